"""ISO 20022 cost per transfer: reading a pacs.009 of 1,000 transfers (parse, schema
facets, mapping), writing its pacs.002, and writing a camt.053 of 1,000 entries.

Medians of ``RUNS`` runs, in microseconds of this process's CPU time per transfer, so
they compare with the ledger's own cost per transfer (``docs/bench.md``) and hold on a
machine busy with other work: all three steps run on one thread.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
import uuid
from collections.abc import Callable

from clients.iso20022 import FileTransfer, Outcome, read_pacs009, write_pacs002, write_pacs009
from clients.iso20022.camt053 import Entry, write_camt053
from ledger.genesis import Currency, Genesis, Parameters, ParticipantSpec, ValidatorSpec
from ledger.keys import PrivateKey

TRANSFERS = 1000
RUNS = 7
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _genesis() -> Genesis:
    def spec(pid: str, role: str, bic: str) -> ParticipantSpec:
        return ParticipantSpec(pid, role, pid, PrivateKey.generate().public_key, bic)

    return Genesis("bench", Currency("SGD", 2), 0,
                   (spec("central-bank", "central_bank", "CBNKSGX0"),
                    spec("bank-a", "bank", "BNKASGX0"), spec("bank-b", "bank", "BNKBSGX0")),
                   (ValidatorSpec("validator-1", PrivateKey.generate().public_key),),
                   Parameters())


def _median_us(action: Callable[[], object]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.process_time()
        action()
        times.append(time.process_time() - started)
    return statistics.median(times) / TRANSFERS * 1e6


def run() -> dict:
    genesis = _genesis()
    transfers = [FileTransfer(0, f"E2E-{i}", str(uuid.UUID(int=i + 1, version=4)), "bank-a",
                              "bank-b", 100 + i) for i in range(TRANSFERS)]
    data = write_pacs009("BENCH", transfers, genesis, NOW)
    file = read_pacs009(data, genesis, payer="bank-a")
    outcomes = [Outcome("settled", transfer_id="ab" * 32)] * TRANSFERS
    entries = [Entry(f"{i:064x}", i % 2 == 0, "bank-a", "bank-b", 100 + i, t.reference,
                     1_767_225_600_000 + i, i) for i, t in enumerate(transfers)]
    figures = {
        "read pacs.009": _median_us(lambda: read_pacs009(data, genesis, payer="bank-a")),
        "write pacs.002": _median_us(
            lambda: write_pacs002(file, outcomes, message_id="B", created=NOW)),
        "write camt.053": _median_us(
            lambda: write_camt053(genesis, "bank-a", NOW.date(), opening=0, entries=entries,
                                  message_id="S", created=NOW)),
    }
    return {
        "rows": [{"metric": f"{name}, {TRANSFERS:,} transfers", "value": round(value, 1),
                  "unit": "us CPU/transfer", "target": ""} for name, value in figures.items()],
        "runs": RUNS,
        "pacs009_bytes": len(data),
    }

