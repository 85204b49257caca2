"""The soak's verdict: memory flat after the settling time, last minute's p99 near the first."""

from __future__ import annotations

from clients.bench.soak import judge


def curve(*mean_mb: float) -> list[dict[str, float]]:
    return [{"second": 60 * i, "mean_mb": m, "max_mb": m} for i, m in enumerate(mean_mb)]


def minutes(*p99: float) -> list[dict[str, float]]:
    return [{"second": 60 * i, "settled": 100, "p50_ms": p / 2, "p99_ms": p}
            for i, p in enumerate(p99)]


def test_memory_that_levels_off_after_five_minutes_is_flat() -> None:
    verdict = judge(curve(100, 130, 150, 160, 165, 170, 172, 171, 174), minutes(400, 410, 420))
    assert verdict.rss_at_settle_mb == 170
    assert verdict.passed


def test_memory_still_climbing_after_five_minutes_is_drift() -> None:
    verdict = judge(curve(100, 120, 140, 160, 180, 200, 210, 220, 230), minutes(400, 400))
    assert round(verdict.rss_growth, 3) == 0.15
    assert not verdict.passed


def test_a_p99_that_rose_by_more_than_a_tenth_is_drift() -> None:
    verdict = judge(curve(*[150] * 9), minutes(408, 450, 528))
    assert round(verdict.p99_change, 3) == 0.294
    assert not verdict.passed


def test_a_last_minute_of_stragglers_is_not_compared() -> None:
    drain = {"second": 180, "settled": 3, "p50_ms": 100.0, "p99_ms": 120.0}
    verdict = judge(curve(*[150] * 9), [*minutes(400, 410, 420), drain])
    assert verdict.last_p99_ms == 420
    assert verdict.passed
