"""The verifier-beside-a-busy-interpreter benchmark (``services.validator.signature_bench``)
runs both engines, alone and beside a spinning thread; no time is asserted."""

from __future__ import annotations

from services.validator.signature_bench import run


def test_both_engines_are_measured_alone_and_beside_a_busy_thread() -> None:
    figures = run(count=128, repeats=1)

    assert set(figures) == {
        "threads, alone", "threads, beside a busy thread",
        "processes, alone", "processes, beside a busy thread",
    }
    assert all(rate > 0 for rate in figures.values()), figures
