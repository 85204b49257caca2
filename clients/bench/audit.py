"""Audit speed: transactions audited per second against what the cores can verify.

A one-validator network's store is filled offline with a million signed transfers in
sealed blocks of 2,000 (``clients.bench.memory.fill``), then ``straits audit``'s auditor
reads the file read-only and checks everything: hashes, seals, every signature,
replay of every block, conservation, queues, the head state. The figure is the audit's
rate divided by cores x the rate of one thread verifying the same transactions'
signatures in a plain loop, measured in the same run just before and just after the
audit (the median of both, so a change in machine load hits both sides alike).
Target: >= 0.8, that is, the audit costs at most a quarter more than its signatures.

On a machine shared with other work the audit's processes do not get every core, which
the wall-clock ratio cannot tell from a slow audit; so the CPU time is measured too:
one verification's CPU time over the audit's CPU time per transaction (all its threads
and its worker processes), the same ratio as it would be with the cores to itself.

``python -m clients.bench.audit [--payments N] [--keep DIR] [--threads]``; also a section
of ``make bench``. ``--keep DIR`` fills a chain there once and audits it on later runs;
``--threads`` verifies in threads of the auditing process instead of worker processes
(the audit's design before the worker processes, kept for comparison).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path

from clients.audit.auditor import Auditor, decode
from clients.audit.signatures import SignaturePool
from clients.audit.sources import StoreSource
from clients.bench.memory import fill
from clients.bench.network import free_base_port
from ledger import genesis as genesis_file
from ledger.execute import key_lookup
from ledger.state import State
from ledger.verifier import BatchVerifier, available_cores
from services.common.config import load_config
from services.network.setup import NetworkPlan, init_network

PAYMENTS = 1_000_000
TARGET_RATIO = 0.8
SAMPLE = 4_000  # transactions in one single-thread verification sample
SAMPLES = 3


def single_thread_rate(
    source: StoreSource, genesis: genesis_file.Genesis
) -> tuple[float, float]:
    """Signatures one thread verifies a second, on transfers of the chain itself: by the
    wall clock and by the thread's CPU time."""
    records = source.blocks(2, 2)
    transactions = [t for r in records for t in decode(r, genesis.chain_id).transactions
                    if t is not None][:SAMPLE]
    key_of = key_lookup(State.genesis(genesis))
    rates, cpu_rates = [], []
    for _ in range(SAMPLES):
        started, cpu_started = time.perf_counter(), time.thread_time()
        for t in transactions:
            key = key_of(t.signer)
            if key is None or not key.verify(t.signature, t.signed):
                raise RuntimeError(f"transaction {t.id.hex()} does not verify")
        rates.append(len(transactions) / (time.perf_counter() - started))
        cpu_rates.append(len(transactions) / (time.thread_time() - cpu_started))
    return statistics.median(rates), statistics.median(cpu_rates)


def _cpu_with_children() -> float:
    """CPU time of this process and of every process below it, so far.

    The worker processes are children of the forkserver, and their time shows in
    ``os.times()`` only once they have been waited for, so it is read from ``/proc``
    while they run."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = time.process_time()
    seen: set[str] = set()
    parents = [str(os.getpid())]
    while parents:
        pid = parents.pop()
        for children in Path("/proc", pid, "task").glob("*/children"):
            with contextlib.suppress(OSError):
                for child in children.read_text().split():
                    if child in seen:
                        continue
                    seen.add(child)
                    parents.append(child)
                    fields = Path("/proc", child, "stat").read_text().rsplit(")", 1)[1].split()
                    total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def filled_network(directory: Path, payments: int) -> tuple[int, float]:
    """A one-validator network in ``directory`` whose store holds ``payments`` transfers;
    reused as it is when a previous run left it there. Returns (height, seconds to fill)."""
    if (directory / "filled").exists():
        return int((directory / "filled").read_text()), 0.0
    init_network(directory, NetworkPlan(validators=1, banks=3, base_port=free_base_port()),
                 now=dt.datetime.now(dt.UTC))
    started = time.perf_counter()
    height = fill(directory, payments)
    (directory / "filled").write_text(str(height))
    return height, time.perf_counter() - started


def run(payments: int = PAYMENTS, keep: Path | None = None, threads: bool = False) -> dict:
    cores = available_cores()
    with tempfile.TemporaryDirectory(prefix="straits-audit-") as tmp:
        directory = keep if keep is not None else Path(tmp) / "net"
        height, fill_seconds = filled_network(directory, payments)
        config = load_config(directory / "nodes" / "validator-1" / "node.toml")
        genesis = genesis_file.load(config.genesis)
        source = StoreSource(config.data_dir / "ledger.db")
        try:
            before = single_thread_rate(source, genesis)
            verifier = (BatchVerifier(workers=cores, cache_size=0) if threads
                        else SignaturePool(cores, genesis.chain_id))
            with verifier:
                cpu_started, own_started = _cpu_with_children(), time.process_time()
                report = Auditor(genesis, verifier).run(source)
                audit_cpu = _cpu_with_children() - cpu_started
                own_cpu = time.process_time() - own_started
                load = os.getloadavg()
            after = single_thread_rate(source, genesis)
        finally:
            source.close()
    if not report.clean:
        raise RuntimeError(f"the benchmark's chain did not audit clean: {report.findings[:3]}")
    audited = report.transactions / report.seconds
    single = statistics.median([before[0], after[0]])
    ratio = audited / (cores * single)
    verify_cpu_us = 1e6 / statistics.median([before[1], after[1]])
    audit_cpu_us = 1e6 * audit_cpu / report.transactions
    cpu_ratio = verify_cpu_us / audit_cpu_us
    own_cpu_us = 1e6 * own_cpu / report.transactions
    rows = [
        {"metric": f"audit of {report.transactions:,} transactions, {report.blocks:,} blocks",
         "value": audited, "unit": "tx/s", "target": ""},
        {"metric": "single-thread signature verification (before / after, median)",
         "value": single, "unit": "sig/s", "target": ""},
        {"metric": f"audit rate / ({cores} cores x single-thread verify)", "value": ratio,
         "unit": "ratio", "target": f">= {TARGET_RATIO}"},
        {"metric": "CPU: one verification / audit CPU per transaction "
                   f"({verify_cpu_us:.0f} / {audit_cpu_us:.0f} us)",
         "value": cpu_ratio, "unit": "ratio", "target": f">= {TARGET_RATIO}"},
        {"metric": f"cores the audit got: its CPU time / its wall time (of {cores})",
         "value": audit_cpu / report.seconds, "unit": "cores", "target": ""},
        {"metric": "CPU of the auditing process itself per transaction (workers apart)",
         "value": own_cpu_us, "unit": "us", "target": ""},
        {"metric": "load average over 1 / 5 / 15 min at the audit's end "
                   f"({load[1]:.2f} / {load[2]:.2f})",
         "value": load[0], "unit": "", "target": ""},
    ]
    return {
        "rows": rows,
        "payments": payments,
        "height": height,
        "fill_seconds": fill_seconds,
        "audit_seconds": report.seconds,
        "transactions": report.transactions,
        "audited_per_second": audited,
        "single_thread_verify_per_second": [before[0], after[0]],
        "cores": cores,
        "ratio": ratio,
        "verify_cpu_us": verify_cpu_us,
        "audit_cpu_us_per_transaction": audit_cpu_us,
        "cpu_ratio": cpu_ratio,
        "auditing_process_cpu_us_per_transaction": own_cpu_us,
        "cores_used": audit_cpu / report.seconds,
        "verify_in": "threads" if threads else "processes",
        "load_average_at_end": list(load),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=PAYMENTS)
    parser.add_argument("--keep", type=Path, help="fill the chain here once, reuse it after")
    parser.add_argument("--threads", action="store_true",
                        help="verify in threads of the auditing process, not worker processes")
    args = parser.parse_args()
    from clients.bench.core import print_table

    print_table({"audit": run(args.payments, args.keep, args.threads)})


if __name__ == "__main__":
    main()
