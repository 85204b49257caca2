"""Batch signature verification over all cores, with a cache of positive verdicts.

``BatchVerifier.verify`` takes (public key, message, signature) triples and returns one
verdict per triple, in order. A bad or malformed signature yields ``False`` for its own
item and never raises, hides or spoils a neighbour.

Why threads: ``cryptography`` >= 50 releases the GIL while it verifies, so a thread pool
scales across cores without pickling keys and messages into other processes (measured
in ``docs/verifier.md``). A batch is cut into one strided chunk per worker (item i goes to
chunk i % workers, which also balances a batch that mixes Ed25519 and P-256); the calling
thread verifies one chunk itself, so a batch costs workers - 1 futures, not one per item.
Batches smaller than ``inline_below`` are verified on the calling thread alone: below that
size handing work to another thread costs more than it saves.

The cache remembers successes only, keyed by SHA-256 over (key fingerprint, signature,
SHA-256 of the message). A transaction id is by definition SHA-256 of the signed bytes,
so ``verify_transactions`` reuses it as the message digest: a transaction checked at
admission is a cache hit when it returns inside a block, whichever method saw it first.
The key covers every input of the verdict, so a hit returns exactly the verdict a fresh
check would; failures are never cached, so nothing can turn a bad signature good.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from types import TracebackType

from ledger.keys import PublicKey
from ledger.transaction import Transaction

# Measured on 2 cores (docs/verifier.md): handing a chunk to a worker thread costs about
# one Ed25519 verify, so a batch of one is cheaper inline and two already gain.
DEFAULT_INLINE_BELOW = 2
# A transaction comes back inside a block soon after admission: a validator holds at
# most a mempool and an intake queue of them (14,000 by default), so twice that keeps
# every hit while the cache, full within minutes, stops growing (docs/runtime.md).
DEFAULT_CACHE_SIZE = 32_768

Item = tuple[PublicKey, bytes, bytes]


@dataclass(frozen=True, slots=True)
class VerifierStats:
    """Running totals since construction, for metrics.

    ``verified`` counts signature checks actually performed, ``cache_hits`` verdicts
    answered from the cache, ``failures`` items whose verdict was False (including
    transactions whose signer has no key).
    """

    verified: int
    cache_hits: int
    failures: int


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), which a container may limit."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _VerdictCache:
    """A bounded, thread-safe set of cache keys whose signature verified; oldest out first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._keys: dict[bytes, None] = {}
        self._lock = threading.Lock()

    def known(self, keys: Sequence[bytes]) -> list[bool]:
        with self._lock:
            entries = self._keys
            return [k in entries for k in keys]

    def add(self, keys: Sequence[bytes]) -> None:
        if not keys:
            return
        with self._lock:
            entries = self._keys
            for k in keys:
                entries[k] = None
            # Insertion order is age order, so the first keys are the oldest.
            excess = len(entries) - self.capacity
            if excess > 0:
                for k in list(islice(entries, excess)):
                    del entries[k]


def _cache_key(key: PublicKey, signature: bytes, message_digest: bytes) -> bytes:
    # The fingerprint starts with the key type and each type has a fixed key length, and
    # the digest has a fixed length, so the concatenation is unambiguous.
    return hashlib.sha256(key.fingerprint + bytes(signature) + message_digest).digest()


def _verify_all(items: Sequence[Item]) -> list[bool]:
    return [key.verify(signature, message) for key, message, signature in items]


def _verify_with_cache(
    cache: _VerdictCache, items: Sequence[Item], digests: Sequence[bytes] | None
) -> tuple[list[bool], int]:
    """Verdicts for one chunk and how many signatures it really checked.

    Hashing and cache lookups happen here, in the chunk, so they too are spread over
    the workers. ``digests`` are the messages' SHA-256 when the caller already has them.
    """
    if digests is None:
        digests = [hashlib.sha256(message).digest() for _, message, _ in items]
    keys = [
        _cache_key(key, signature, digest)
        for (key, _, signature), digest in zip(items, digests, strict=True)
    ]
    verdicts = cache.known(keys)
    checked = 0
    verified_keys: list[bytes] = []
    for i, hit in enumerate(verdicts):
        if hit:
            continue
        key, message, signature = items[i]
        checked += 1
        if key.verify(signature, message):
            verdicts[i] = True
            verified_keys.append(keys[i])
    cache.add(verified_keys)
    return verdicts, checked


class BatchVerifier:
    """Verifies batches of signatures on a thread pool; see the module docstring.

    The constructor only assigns: ``start()`` starts the pool and ``close()`` stops it
    (or use it as a context manager). Safe to call from many threads at once.
    """

    def __init__(
        self,
        workers: int | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        inline_below: int = DEFAULT_INLINE_BELOW,
    ) -> None:
        self.workers = max(1, workers if workers is not None else available_cores())
        self.inline_below = max(1, inline_below)
        self._cache = _VerdictCache(max(0, cache_size))
        self._pool: ThreadPoolExecutor | None = None
        self._started = False
        self._counter_lock = threading.Lock()
        self._verified = 0
        self._cache_hits = 0
        self._failures = 0

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> BatchVerifier:
        if self._pool is None and self.workers > 1:
            # The calling thread verifies one chunk itself, so workers - 1 threads suffice.
            self._pool = ThreadPoolExecutor(self.workers - 1, thread_name_prefix="verifier")
        self._started = True
        return self

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._started = False

    def __enter__(self) -> BatchVerifier:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- verification ----------------------------------------------------------------

    def verify(self, items: Sequence[Item]) -> list[bool]:
        """One verdict per (key, message, signature), in order; never raises on bad bytes."""
        return self._run(items, None)

    def verify_transactions(
        self,
        transactions: Sequence[Transaction],
        key_of: Callable[[str], PublicKey | None],
    ) -> list[bool]:
        """One verdict per transaction: signed by the key ``key_of(signer)`` returns.

        A signer with no key (``key_of`` returns None) gets False. No message is hashed
        here: ``Transaction`` guarantees its id is SHA-256 of exactly ``tx.signed``.
        """
        verdicts = [False] * len(transactions)
        positions: list[int] = []
        items: list[Item] = []
        digests: list[bytes] = []
        for i, tx in enumerate(transactions):
            key = key_of(tx.signer)
            if key is None:
                continue
            positions.append(i)
            items.append((key, tx.signed, tx.signature))
            digests.append(tx.id)
        for i, verdict in zip(positions, self._run(items, digests), strict=True):
            verdicts[i] = verdict
        unknown = len(transactions) - len(positions)
        if unknown:
            self._count(verified=0, cache_hits=0, failures=unknown)
        return verdicts

    def stats(self) -> VerifierStats:
        with self._counter_lock:
            return VerifierStats(self._verified, self._cache_hits, self._failures)

    # --- internals -----------------------------------------------------------------------

    def _run(self, items: Sequence[Item], digests: Sequence[bytes] | None) -> list[bool]:
        if not self._started:
            raise RuntimeError("BatchVerifier.start() must be called before verify")
        if not items:
            return []
        chunks = min(self.workers, len(items))
        if self._pool is None or len(items) < self.inline_below or chunks < 2:
            verdicts, checked = self._verify_chunk(items, digests)
        else:
            futures = [
                self._pool.submit(self._verify_chunk, items[c::chunks], _stride(digests, c, chunks))
                for c in range(1, chunks)
            ]
            verdicts = [False] * len(items)
            verdicts[0::chunks], checked = self._verify_chunk(
                items[0::chunks], _stride(digests, 0, chunks)
            )
            for c, future in enumerate(futures, start=1):
                verdicts[c::chunks], chunk_checked = future.result()
                checked += chunk_checked
        self._count(
            verified=checked, cache_hits=len(items) - checked, failures=verdicts.count(False)
        )
        return verdicts

    def _verify_chunk(
        self, items: Sequence[Item], digests: Sequence[bytes] | None
    ) -> tuple[list[bool], int]:
        if not self._cache.capacity:
            return _verify_all(items), len(items)
        return _verify_with_cache(self._cache, items, digests)

    def _count(self, *, verified: int, cache_hits: int, failures: int) -> None:
        with self._counter_lock:
            self._verified += verified
            self._cache_hits += cache_hits
            self._failures += failures


def _stride(values: Sequence[bytes] | None, first: int, step: int) -> Sequence[bytes] | None:
    return None if values is None else values[first::step]
