"""Benchmark of the batch signature verifier against a plain single-thread loop.

Both run in the same process, side by side, repeat after repeat, so machine noise hits
them alike. The verifier runs with its cache disabled: this measures verification, not
cache lookups. Throughput is reported as a ratio to cores x the single-thread rate;
the target is >= 0.95 from batches of 256 up.

The process-pool rows are the measurement behind choosing threads (docs/verifier.md):
the same batches verified in worker processes, keys and messages pickled across.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

from ledger.keys import KeyType, PrivateKey, PublicKey
from ledger.verifier import BatchVerifier, Item, available_cores

BATCH_SIZES = (1, 64, 256, 1024, 4096)
TARGET_RATIO = 0.95
TARGET_FROM_BATCH = 256
SIGNERS = 16


def _signed_items(count: int, key_type: KeyType) -> list[Item]:
    if key_type is KeyType.ED25519:
        keys = [PrivateKey.from_seed(bytes([n + 1]) * 32) for n in range(SIGNERS)]
    else:
        keys = [PrivateKey.from_p256_scalar(1000 + n) for n in range(SIGNERS)]
    items: list[Item] = []
    for i in range(count):
        key = keys[i % SIGNERS]
        # About the size of a transfer's signing bytes.
        message = f"bench transfer {i:08d} ".encode().ljust(170, b".")
        items.append((key.public_key, message, key.sign(message)))
    return items


def _plain_loop(items: Sequence[Item]) -> list[bool]:
    return [key.verify(signature, message) for key, message, signature in items]


def _rate(run: Callable[[], object], items_per_call: int, min_seconds: float) -> float:
    """Items per second: call ``run`` until ``min_seconds`` have passed."""
    calls = 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < min_seconds or calls == 0:
        run()
        calls += 1
        elapsed = time.perf_counter() - start
    return calls * items_per_call / elapsed


def _raw_chunk(chunk: list[tuple[str, bytes, bytes, bytes]]) -> list[bool]:
    # Runs in a worker process: keys travel as (type, bytes) and are rebuilt there.
    return [PublicKey(KeyType(t), k).verify(s, m) for t, k, m, s in chunk]


def _process_pool_batch(pool: ProcessPoolExecutor, workers: int, items: Sequence[Item]) -> None:
    raw = [(k.type.value, k.data, m, s) for k, m, s in items]
    futures = [pool.submit(_raw_chunk, raw[c::workers]) for c in range(workers)]
    for future in futures:
        future.result()


def run(repeats: int = 5, min_seconds: float = 0.3) -> dict:
    """Measure and return figures plus table rows (see ``clients.bench.core``)."""
    cores = available_cores()
    ed_items = _signed_items(max(BATCH_SIZES), KeyType.ED25519)
    p256_items = _signed_items(1024, KeyType.ECDSA_P256)

    single: list[float] = []
    p256_single: list[float] = []
    per_batch: dict[int, list[float]] = {n: [] for n in BATCH_SIZES}
    process: dict[int, list[float]] = {n: [] for n in (256, 4096)}
    cached: list[float] = []
    with (
        BatchVerifier(workers=cores, cache_size=0) as verifier,
        BatchVerifier(workers=cores) as caching,
        ProcessPoolExecutor(cores) as pool,
    ):
        _process_pool_batch(pool, cores, ed_items[:64])  # start the workers before timing
        caching.verify(ed_items)  # every later call is answered from the cache
        for _ in range(repeats):
            single.append(_rate(lambda: _plain_loop(ed_items), len(ed_items), min_seconds))
            p256_single.append(_rate(lambda: _plain_loop(p256_items), len(p256_items), min_seconds))
            for n in BATCH_SIZES:
                batch = ed_items[:n]
                per_batch[n].append(_rate(lambda b=batch: verifier.verify(b), n, min_seconds))
            cached.append(_rate(lambda: caching.verify(ed_items), len(ed_items), min_seconds))
            for n in process:
                batch = ed_items[:n]
                process[n].append(
                    _rate(lambda b=batch: _process_pool_batch(pool, cores, b), n, min_seconds)
                )

    single_rate = statistics.median(single)
    batches = {
        n: {
            "verifications_per_s": round(statistics.median(rates)),
            "ratio_to_cores_x_single": round(statistics.median(rates) / (cores * single_rate), 3),
        }
        for n, rates in per_batch.items()
    }
    processes = {
        n: {
            "verifications_per_s": round(statistics.median(rates)),
            "ratio_to_cores_x_single": round(statistics.median(rates) / (cores * single_rate), 3),
        }
        for n, rates in process.items()
    }
    met = all(
        b["ratio_to_cores_x_single"] >= TARGET_RATIO
        for n, b in batches.items()
        if n >= TARGET_FROM_BATCH
    )
    rows = [
        _row("Ed25519 verify, single thread", 1e6 / single_rate, "µs"),
        _row("P-256 verify, single thread", 1e6 / statistics.median(p256_single), "µs"),
        _row("single-thread loop", single_rate, "verif/s"),
    ]
    for n, b in batches.items():
        target = f">= {TARGET_RATIO} x {cores} cores" if n >= TARGET_FROM_BATCH else ""
        rows.append(_row(f"verifier, threads, batch {n}", b["verifications_per_s"], "verif/s"))
        rows.append(_row(f"  ratio to {cores} x single", b["ratio_to_cores_x_single"], "", target))
    cached_rate = statistics.median(cached)
    rows.append(_row(f"verifier, batch {len(ed_items)}, all cached", cached_rate, "verif/s"))
    for n, b in processes.items():
        rows.append(_row(f"process pool, batch {n}", b["verifications_per_s"], "verif/s"))
        rows.append(_row(f"  ratio to {cores} x single", b["ratio_to_cores_x_single"], ""))
    return {
        "cores": cores,
        "repeats": repeats,
        "ed25519_verify_us": round(1e6 / single_rate, 1),
        "p256_verify_us": round(1e6 / statistics.median(p256_single), 1),
        "single_thread_per_s": round(single_rate),
        "batches": batches,
        "all_cached_per_s": round(cached_rate),
        "process_pool": processes,
        "target_met": met,
        "rows": rows,
    }


def _row(metric: str, value: float, unit: str, target: str = "") -> dict:
    return {"metric": metric, "value": value, "unit": unit, "target": target}
