"""The tester's summary: percentiles, histogram, warm-up trimming and error counts add up."""

from __future__ import annotations

import pytest

from clients.load.report import Sample, percentile, render, summarise


def settled(at: float, latency_ms: float) -> Sample:
    return Sample(submitted=at, finished=at + latency_ms / 1000.0, status="SETTLED")


def test_percentiles_use_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 99.9) == 100.0
    assert percentile([], 50) == 0.0


def test_a_run_of_one_hundred_payments_is_summarised_from_its_samples() -> None:
    samples = [settled(at=i * 0.01, latency_ms=10 + i) for i in range(100)]
    report = summarise(samples, started=0.0)
    assert report.count == report.settled == 100
    assert report.fastest_ms == pytest.approx(10.0)
    assert report.slowest_ms == pytest.approx(109.0)
    assert abs(report.average_ms - 59.5) < 1e-6
    assert report.percentiles_ms["p50"] == pytest.approx(59.0)
    assert sum(b["count"] for b in report.histogram) == 100
    assert sum(report.per_second) == 100


def test_the_warm_up_is_trimmed_and_said_so() -> None:
    samples = [settled(at=0.1 * i, latency_ms=500 if i < 10 else 20) for i in range(30)]
    report = summarise(samples, started=0.0, warmup_seconds=1.0)
    assert report.warmup_samples_trimmed == 10
    assert report.slowest_ms == pytest.approx(20.0)
    assert "warm-up: first 1 s trimmed, 10 payments left out" in render(report)


def test_refusals_are_counted_by_status_and_reason_and_not_in_latency() -> None:
    samples = [
        settled(0.0, 5),
        Sample(0.0, 0.001, "INVALID_ARGUMENT", "bad_signature"),
        Sample(0.0, 0.001, "INVALID_ARGUMENT", "bad_signature"),
        Sample(0.0, 0.002, "FAILED_PRECONDITION", "replay"),
    ]
    report = summarise(samples, started=0.0)
    assert report.status_counts == {"SETTLED": 1, "INVALID_ARGUMENT": 2, "FAILED_PRECONDITION": 1}
    assert report.error_reasons == {
        "INVALID_ARGUMENT: bad_signature": 2,
        "FAILED_PRECONDITION: replay": 1,
    }
    assert report.settled == 1
    assert report.fastest_ms == pytest.approx(5.0)
    text = render(report)
    assert "[2] INVALID_ARGUMENT: bad_signature" in text
