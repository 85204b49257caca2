"""What a run leaves behind: the live progress line, the JSON report and the PNG chart.

The JSON report is ``Report.to_dict()`` (the summary's fields) plus the run's
configuration, the machine it ran on, the open loop's offered rate per second,
the deliberately bad payments' verdicts and latency per second. The chart shows
settled payments per second and p50 / p99 latency per second over the run.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path

from clients.load.finality import SETTLED
from clients.load.recorder import BadVerdicts, Progress
from clients.load.report import Report, Sample, percentile


def machine() -> dict[str, object]:
    """Cores, CPU model, memory and Python: what absolute numbers depend on."""
    model = platform.processor() or platform.machine()
    memory_bytes = 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError):
        pass  # not Linux: keep what platform knows
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_bytes": memory_bytes,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def latency_per_second(samples: Sequence[Sample], start: float,
                       width: float = 1.0) -> list[dict[str, float]]:
    """p50 / p99 of the payments that settled in each ``width`` seconds from ``start``
    (``second`` names the bin's first second)."""
    bins: dict[int, list[float]] = {}
    for s in samples:
        if s.status == SETTLED and s.submitted >= start:
            bins.setdefault(int((s.finished - start) // width),
                            []).append((s.finished - s.submitted) * 1e3)
    out = []
    for index in range(max(bins, default=-1) + 1):
        values = sorted(bins.get(index, []))
        out.append({"second": round(index * width), "settled": len(values),
                    "p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99)})
    return out


def progress_line(elapsed: float, progress: Progress, last_settled: int) -> str:
    values = sorted(progress.latencies_ms)
    return (f"[{elapsed:6.1f}s] sent {progress.sent}  settled {progress.settled}  "
            f"{progress.settled - last_settled}/s  p50 {percentile(values, 50):.1f} ms  "
            f"p99 {percentile(values, 99):.1f} ms  errors {progress.errors}")


def render_extra(bad: BadVerdicts, offered: list[int], missed: int, short: list[int],
                 rate: float | None) -> str:
    """Lines after ghz's summary: the bad payments' verdicts and an unheld rate."""
    lines = []
    if rate is not None and (short or missed):
        lines += ["", f"WARNING: the target rate of {rate:g} payments/s was not held: "
                      f"{len(short)} whole seconds below 90% "
                      f"of it, {missed} payments not offered (offered per second: "
                      f"{', '.join(str(n) for n in offered)})"]
    if bad.sent:
        total = sum(bad.sent.values())
        lines += ["", f"Deliberately bad payments: {total} sent, "
                      f"{sum(bad.refused.values())} refused, "
                      f"{sum(bad.not_refused.values())} NOT refused"]
        lines += [f"  [{n}] {why}" for why, n in sorted(bad.refusals.items())]
        lines += [f"  NOT REFUSED [{n}] {what}" for what, n in sorted(bad.not_refused.items())]
    return "\n" + "\n".join(lines) if lines else ""


def write_json(path: Path, report: Report, extra: dict[str, object]) -> None:
    document = report.to_dict() | extra | {"machine": machine()}
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def write_chart(path: Path, per_second: Sequence[int],
                latency: Sequence[dict[str, float]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    from matplotlib import pyplot

    figure, (throughput, latencies) = pyplot.subplots(2, 1, sharex=True, figsize=(9, 6))
    seconds = list(range(len(per_second)))
    throughput.bar(seconds, per_second, width=0.9, color="tab:blue")
    throughput.set_ylabel("settled payments/s")
    throughput.set_title(title)
    latencies.plot([b["second"] for b in latency], [b["p50_ms"] for b in latency],
                   label="p50", marker=".")
    latencies.plot([b["second"] for b in latency], [b["p99_ms"] for b in latency],
                   label="p99", marker=".")
    latencies.set_ylabel("submission to finality (ms)")
    latencies.set_xlabel("seconds after warm-up")
    latencies.legend()
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    pyplot.close(figure)
