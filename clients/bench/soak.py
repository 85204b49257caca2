"""``make soak-network``: a long steady load through the bank nodes, memory and latency watched.

A fresh local network (4 validators, the central bank, 3 banks; every node its own
process) takes payments at a fixed rate through the bank nodes for ``--minutes``
(default 30). Every 10 s the validators' resident memory is read from /proc; the load
generator gives finality latency per minute. The run passes when the validators' memory
is flat after the first 5 minutes (no sample more than 10 % above the 5-minute mark) and
the last minute's p99 is within 10 % of the first minute's. The curve is printed as a
table and written to ``bench/soak.json`` and ``bench/soak.png``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from clients.bench.network import BenchNetwork, memory_mb
from clients.load.runner import LoadRun, LoadSettings, RunResult
from ledger.roles import Role
from services.common.config import load_config

SAMPLE_EVERY_S = 10.0
SETTLE_MINUTES = 5
TOLERANCE = 0.10
OUTPUT = Path("bench")


@dataclass(frozen=True)
class Verdict:
    rss_at_settle_mb: float
    rss_peak_after_mb: float
    rss_growth: float  # peak after the settling time over the value at it, less one
    first_p99_ms: float
    last_p99_ms: float
    p99_change: float

    @property
    def passed(self) -> bool:
        return self.rss_growth <= TOLERANCE and abs(self.p99_change) <= TOLERANCE


def judge(rss: list[dict[str, float]], minutes: list[dict[str, float]]) -> Verdict:
    """Memory flat after ``SETTLE_MINUTES`` and the last minute's p99 near the first's."""
    settle_s = min(SETTLE_MINUTES * 60, rss[-1]["second"])
    at_settle = next(s["mean_mb"] for s in rss if s["second"] >= settle_s)
    after = max(s["mean_mb"] for s in rss if s["second"] >= settle_s)
    # Whole minutes of load only: the drain after the last send settles a few stragglers
    # in a minute of its own, which says nothing about latency under load.
    typical = statistics.median(m["settled"] for m in minutes)
    full = [m for m in minutes if m["settled"] >= typical / 2]
    first, last = full[0]["p99_ms"], full[-1]["p99_ms"]
    return Verdict(at_settle, after, after / at_settle - 1, first, last, last / first - 1)


def sqlite_mb(metrics_address: str) -> float:
    """What SQLite holds in a node's process, from the node's own metrics endpoint."""
    with urllib.request.urlopen(f"http://{metrics_address}/metrics", timeout=10) as page:
        text = page.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == "straits_process_sqlite_memory_bytes":
            return sum(sample.value for sample in family.samples) / 2**20
    return 0.0


def soak(minutes: float, rate: float, directory: Path) -> tuple[RunResult, list[dict[str, float]]]:
    with BenchNetwork(4, directory) as network:
        validators = network.pids("validator")
        configs = [load_config(n.config) for n in network.layout.nodes
                   if n.kind is Role.VALIDATOR]
        endpoints = [f"{c.listen.rpartition(':')[0]}:{c.metrics_port}" for c in configs]
        settings = LoadSettings(via="bank", rate=rate, duration=minutes * 60, drain=30.0,
                                max_calls=64, fund=10**15)
        done: list[RunResult] = []
        run = threading.Thread(target=lambda: done.append(
            LoadRun(settings, network.endpoints, out=sys.stderr).run(threading.Event())),
            name="soak-load")
        started = time.monotonic()
        run.start()
        rss: list[dict[str, float]] = []
        while run.is_alive():
            values = [memory_mb(pid, "VmRSS") for pid in validators]
            databases = [sqlite_mb(address) for address in endpoints]
            rss.append({"second": round(time.monotonic() - started),
                        "mean_mb": statistics.fmean(values), "max_mb": max(values),
                        "sqlite_mb": statistics.fmean(databases)})
            run.join(SAMPLE_EVERY_S)
        if not done:
            raise RuntimeError("the load run ended without a result (see its output above)")
        return done[0], rss


def chart(path: Path, rss: list[dict[str, float]], minutes: list[dict[str, float]],
          title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (memory, latency) = pyplot.subplots(2, 1, sharex=True, figsize=(9, 6))
    memory.plot([s["second"] / 60 for s in rss], [s["mean_mb"] for s in rss], label="mean")
    memory.plot([s["second"] / 60 for s in rss], [s["max_mb"] for s in rss], label="max")
    memory.plot([s["second"] / 60 for s in rss], [s["sqlite_mb"] for s in rss],
                label="of which SQLite (mean)")
    memory.set_ylabel("validator RSS (MB)")
    memory.set_title(title)
    memory.legend()
    latency.plot([m["second"] / 60 for m in minutes], [m["p50_ms"] for m in minutes],
                 label="p50", marker=".")
    latency.plot([m["second"] / 60 for m in minutes], [m["p99_ms"] for m in minutes],
                 label="p99", marker=".")
    latency.set_ylabel("finality (ms)")
    latency.set_xlabel("minutes")
    latency.legend()
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    pyplot.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make soak-network", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=400.0, help="payments per second")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="straits-soak-") as directory:
        result, rss = soak(args.minutes, args.rate, Path(directory))
    minutes = result.extra["latency_per_minute"]
    assert isinstance(minutes, list)
    verdict = judge(rss, minutes)
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "soak.json").write_text(json.dumps(
        {"minutes": args.minutes, "rate": args.rate, "rss": rss, "latency_per_minute": minutes,
         "verdict": verdict.__dict__ | {"passed": verdict.passed},
         "settled": result.report.settled, "errors": result.report.error_reasons}, indent=1))
    chart(OUTPUT / "soak.png", rss, minutes,
          f"{args.rate:.0f} payments/s through bank nodes, 4 validators")
    print(f"{'minute':>6} {'RSS mean MB':>12} {'RSS max MB':>11} {'SQLite MB':>10} "
          f"{'settled':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for m in minutes:
        at = [s for s in rss if m["second"] <= s["second"] < m["second"] + 60] or rss[-1:]
        print(f"{m['second'] // 60:>6} {statistics.fmean(s['mean_mb'] for s in at):>12.1f} "
              f"{max(s['max_mb'] for s in at):>11.1f} "
              f"{statistics.fmean(s['sqlite_mb'] for s in at):>10.1f} {m['settled']:>8} "
              f"{m['p50_ms']:>7.1f} {m['p99_ms']:>7.1f}")
    print(f"RSS at {SETTLE_MINUTES} min {verdict.rss_at_settle_mb:.1f} MB, highest after "
          f"{verdict.rss_peak_after_mb:.1f} MB ({verdict.rss_growth:+.1%}); p99 first minute "
          f"{verdict.first_p99_ms:.0f} ms, last {verdict.last_p99_ms:.0f} ms "
          f"({verdict.p99_change:+.1%}): {'flat' if verdict.passed else 'DRIFT'}")
    print(f"settled {result.report.settled}, errors {result.report.error_reasons or 'none'}")
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
