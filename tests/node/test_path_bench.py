"""The validator-path benchmark (``services.validator.path_bench``) runs the real path.

It drives two validators' chains through admission, a proposal, validation and commits
on SQLite files; this checks that every stage ran and every block carried the payments
submitted (the benchmark raises otherwise), so the figures in docs/bench.md stay
reproducible as the code under them changes. No time is asserted.
"""

from __future__ import annotations

from services.validator.path_bench import STAGES, run


def test_every_stage_of_the_path_runs_on_blocks_of_the_payments_submitted() -> None:
    figures = run(block=20, rounds=3)

    assert set(figures) == {*STAGES, "weighted"}
    assert all(value > 0 for value in figures.values()), figures
