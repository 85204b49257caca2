"""Benchmark: the verifier's rate beside a busy interpreter, threads against worker processes.

In a validator the verifier never runs alone: the node loop executes blocks and the
intake decodes batches, in Python, on the same interpreter. A verifier thread gives the
GIL back for each signature and must take it again after; a thread running Python keeps
it for up to the switch interval (5 ms). This measures what that costs: the same batch
verified with the verifier's two engines (``ledger.verifier.verify_here`` in its threads,
``services.validator.signature_processes.ProcessEngine`` in worker processes), each
alone and beside one thread spinning in Python, median of the repeats, cache disabled.

``python -m services.validator.signature_bench [--count N] [--repeats N]``; the figures
are in docs/bench.md.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable

from ledger.keys import PrivateKey
from ledger.verifier import BatchVerifier, Engine
from services.validator.signature_processes import ProcessEngine

ENGINES: dict[str, Callable[[], Engine] | None] = {"threads": None, "processes": ProcessEngine}


def _rate(engines: Callable[[], Engine] | None, items: list, busy: bool) -> float:
    stop = threading.Event()

    def spin() -> None:
        total = 0
        while not stop.is_set():
            for i in range(1000):
                total += i

    spinner = threading.Thread(target=spin, daemon=True)
    with BatchVerifier(workers=2, cache_size=0, engines=engines) as verifier:
        verifier.verify(items[:64])  # the workers are up before the clock starts
        if busy:
            spinner.start()
        started = time.perf_counter()
        verifier.verify(items)
        elapsed = time.perf_counter() - started
    stop.set()
    if busy:
        spinner.join()
    return len(items) / elapsed


def run(count: int = 3000, repeats: int = 3) -> dict[str, float]:
    key = PrivateKey.generate()
    items = [(key.public_key, b"payment %d" % i, key.sign(b"payment %d" % i))
             for i in range(count)]
    figures: dict[str, float] = {}
    for name, engines in ENGINES.items():
        for busy in (False, True):
            label = f"{name}, {'beside a busy thread' if busy else 'alone'}"
            figures[label] = round(statistics.median(
                _rate(engines, items, busy) for _ in range(repeats)))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for label, rate in run(args.count, args.repeats).items():
        print(f"{label:40s} {rate:8,.0f} verifications/s")


if __name__ == "__main__":
    main()
