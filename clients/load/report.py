"""The load run's report: what a tester reads at the end, in the shape ghz made familiar.

A run records one ``Sample`` per payment: when it was submitted, when the block
that settles it was committed (or that it failed, and why). ``summarise`` turns
the samples into a ``Report``: count, total time, settled payments per second,
fastest / average / slowest, a latency histogram, percentiles, status counts and
per-second settlement bins, with the warm-up trimmed and said so. ``render``
prints it; ``Report.to_dict`` is the JSON form.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

PERCENTILES = (50.0, 75.0, 90.0, 95.0, 99.0, 99.9)
HISTOGRAM_BUCKETS = 10


@dataclass(frozen=True, slots=True)
class Sample:
    submitted: float  # seconds on the run's monotonic clock
    finished: float  # final (settled) or failed
    status: str  # "SETTLED", "QUEUED", or an error code such as "RESOURCE_EXHAUSTED"
    reason: str = ""  # error reason, for failures


@dataclass(frozen=True)
class Report:
    count: int
    settled: int
    total_seconds: float
    settled_per_second: float
    fastest_ms: float
    average_ms: float
    slowest_ms: float
    percentiles_ms: dict[str, float]
    histogram: list[dict[str, float]]
    status_counts: dict[str, int]
    error_reasons: dict[str, int]
    per_second: list[int]
    warmup_seconds: float
    warmup_samples_trimmed: int
    config: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already-sorted values (the definition ghz and hdr use)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def histogram(
    sorted_values: Sequence[float], buckets: int = HISTOGRAM_BUCKETS
) -> list[dict[str, float]]:
    """Equal-width buckets between fastest and slowest, each with its upper bound and count."""
    if not sorted_values:
        return []
    low, high = sorted_values[0], sorted_values[-1]
    width = (high - low) / buckets or 1.0
    bounds = [low + width * (i + 1) for i in range(buckets)]
    bounds[-1] = high
    out, start = [], 0
    for bound in bounds:
        end = bisect.bisect_right(sorted_values, bound, lo=start)
        out.append({"le_ms": bound, "count": end - start})
        start = end
    return out


def summarise(
    samples: Sequence[Sample],
    *,
    started: float,
    warmup_seconds: float = 0.0,
    config: dict[str, object] | None = None,
) -> Report:
    """Summarise a run; samples submitted in the first ``warmup_seconds`` are left out."""
    cutoff = started + warmup_seconds
    kept = [s for s in samples if s.submitted >= cutoff]
    settled = sorted((s.finished - s.submitted) * 1000.0 for s in kept if s.status == "SETTLED")
    end = max((s.finished for s in kept), default=cutoff)
    total = max(end - cutoff, 1e-9)
    per_second = [0] * (int(total) + 1)
    for s in kept:
        if s.status == "SETTLED":
            per_second[min(int(s.finished - cutoff), len(per_second) - 1)] += 1
    failures = Counter(
        f"{s.status}: {s.reason}" if s.reason else s.status for s in kept if s.status != "SETTLED"
    )
    return Report(
        count=len(kept),
        settled=len(settled),
        total_seconds=total,
        settled_per_second=len(settled) / total,
        fastest_ms=settled[0] if settled else 0.0,
        average_ms=sum(settled) / len(settled) if settled else 0.0,
        slowest_ms=settled[-1] if settled else 0.0,
        percentiles_ms={f"p{p:g}": percentile(settled, p) for p in PERCENTILES},
        histogram=histogram(settled),
        status_counts=dict(Counter(s.status for s in kept)),
        error_reasons=dict(failures),
        per_second=per_second,
        warmup_seconds=warmup_seconds,
        warmup_samples_trimmed=len(samples) - len(kept),
        config=dict(config or {}),
    )


def render(report: Report) -> str:
    """The human summary printed at the end of a run."""
    lines = [
        "Summary:",
        f"  Count:        {report.count}",
        f"  Settled:      {report.settled}",
        f"  Total:        {report.total_seconds:.2f} s",
        f"  Slowest:      {report.slowest_ms:.2f} ms",
        f"  Fastest:      {report.fastest_ms:.2f} ms",
        f"  Average:      {report.average_ms:.2f} ms",
        f"  Settled/s:    {report.settled_per_second:.1f}",
    ]
    if report.warmup_samples_trimmed:
        lines.append(
            f"  (warm-up: first {report.warmup_seconds:g} s trimmed, "
            f"{report.warmup_samples_trimmed} payments left out)"
        )
    lines += ["", "Submission-to-finality latency histogram:"]
    peak = max((b["count"] for b in report.histogram), default=0) or 1
    for bucket in report.histogram:
        bar = "∎" * round(40 * bucket["count"] / peak)
        lines.append(f"  {bucket['le_ms']:10.2f} ms [{int(bucket['count']):>7}] |{bar}")
    lines += ["", "Latency distribution:"]
    lines += [f"  {name} in {value:.2f} ms" for name, value in report.percentiles_ms.items()]
    lines += ["", "Status code distribution:"]
    lines += [
        f"  [{status}] {count} payments" for status, count in sorted(report.status_counts.items())
    ]
    if report.error_reasons:
        lines += ["", "Error distribution:"]
        lines += [f"  [{count}] {reason}" for reason, count in sorted(report.error_reasons.items())]
    return "\n".join(lines)
