"""Long seeded simulation: ``python -m tests.consensus.soak --runs N [--start S] [--seed N]``.

Runs seeds ``start .. start+runs-1`` (or one ``--seed``) through
``tests.consensus.runs.random_run`` and prints every failing seed with its
reason; exits non-zero if any failed. ``--sizes`` and ``--real-ledger`` match the
options a test ran the seed with (a failure message prints the exact replay command).
"""

from __future__ import annotations

import argparse
import sys
import time

from tests.consensus.cluster import SafetyViolation
from tests.consensus.runs import random_run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--start", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=None, help="replay one seed")
    parser.add_argument("--sizes", default="4,4,4,7,10", help="cluster sizes a seed picks from")
    parser.add_argument("--real-ledger", action="store_true", help="nodes run ledger.execute")
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else range(args.start, args.start + args.runs)
    sizes = tuple(int(size) for size in args.sizes.split(","))
    failed: list[int] = []
    began = time.perf_counter()
    for count, seed in enumerate(seeds, 1):
        try:
            result = random_run(seed, sizes=sizes, real_ledger=args.real_ledger)
        except SafetyViolation as exc:
            failed.append(seed)
            print(f"FAIL {exc}", flush=True)
            continue
        if args.seed is not None:
            print(f"seed={seed} n={result.n} byzantine={result.byzantine} heights={result.heights}")
        if count % 500 == 0:
            print(
                f"{count} runs, {len(failed)} failed, {time.perf_counter() - began:.0f}s",
                flush=True,
            )
    print(f"{len(seeds)} runs, {len(failed)} failed: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
