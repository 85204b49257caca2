"""``python -m clients.bench.suite`` (``make bench``): the whole benchmark in one run.

The core sections (signature verifier against a single-thread loop; apply + store on
one core; the liquidity-saving mechanism) and then the network sections (real
processes: 1, 4 and 7 validators), all on the same machine in the same run, so the
ratios between them are the headline; then finality with validators 20 and 50 ms apart
(delaying relays); last, the memory of a validator holding a million payments, and the
audit of a million-payment chain against what the cores can verify.
Prints one table and writes ``bench/results.json`` and the charts in ``bench/``.
"""

from __future__ import annotations

from pathlib import Path

from clients.bench import audit, core, lsm, memory, network, wan

OUTPUT = Path("bench/results.json")


def main() -> None:
    sections = {**core.SECTIONS, "lsm": lsm.run, "network": network.run, "wan": wan.run,
                "memory": memory.run, "audit": audit.run}
    core.main(sections, OUTPUT, "make bench")


if __name__ == "__main__":
    main()
