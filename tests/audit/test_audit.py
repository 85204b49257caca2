"""`straits audit` against a real network and against tampered copies of its store.

Each tampering story changes one thing in a copy of validator-1's SQLite file, the way
someone with write access to a validator's disk could, and checks that the audit names
the exact block and what is wrong with it, and exits 1. The untouched network audits
clean over gRPC (as the regulator) and offline, and the audit never writes to a copy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from straits.ledger.v1 import block_pb2 as block_pb
from straits.ledger.v1 import receipt_pb2 as receipt_pb
from straits.ledger.v1 import transaction_pb2 as tx_pb

from clients.cli.main import main
from clients.sdk.bank import Instruction
from services.network.setup import NetworkPlan, init_network
from tests.audit.conftest import AuditedNetwork
from tests.bank.network import free_base_port

SETTLED, QUEUED = receipt_pb.OUTCOME_SETTLED, receipt_pb.OUTCOME_QUEUED
INDEX_BITS = 20


def audit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["audit", "--json", *argv])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def offline(capsys: pytest.CaptureFixture[str], audited: AuditedNetwork,
            path: Path) -> tuple[int, dict[str, Any]]:
    return audit(capsys, "--store", str(path), "--genesis", str(audited.directory / "genesis.json"))


def findings_at(document: dict[str, Any], height: int) -> list[dict[str, str]]:
    [report] = document["reports"]
    return next((h["findings"] for h in report["findings"] if h["height"] == height), [])


def checks_at(document: dict[str, Any], height: int) -> set[str]:
    return {f["check"] for f in findings_at(document, height)}


def first_bad(document: dict[str, Any]) -> int | None:
    return document["reports"][0]["first_bad_height"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def a_transfer(db: Path, outcome: int) -> tuple[int, bytes]:
    """(key, body) of the first transfer with ``outcome`` in the store."""
    with sqlite3.connect(db) as conn:
        for key, body in conn.execute(
            "SELECT key, body FROM transactions WHERE outcome = ? ORDER BY key", (outcome,)
        ):
            if tx_pb.TransactionBody.FromString(body).WhichOneof("kind") == "transfer":
                return key, body
    raise AssertionError(f"no transfer with outcome {outcome} in {db}")


def a_busy_block(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT key >> 20 AS height FROM transactions GROUP BY height HAVING count(*) >= 2"
            " ORDER BY height LIMIT 1"
        ).fetchone()
    assert row, "the network made no block with two transactions"
    return int(row[0])


def write(db: Path, statement: str, *parameters: object) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(statement, parameters)


# --- a clean network ---------------------------------------------------------------------


def test_a_running_validator_audits_clean_over_grpc_as_the_regulator(
    audited: AuditedNetwork, capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = audit(capsys, "--network", str(audited.directory),
                           "--validator", "validator-2")

    [report] = document["reports"]
    assert code == 0, report["findings"]
    assert report["clean"] and report["blocks"] >= audited.head
    assert report["transactions"] >= 45  # 3 issues, 2 payments, 40 in one batch


def test_a_validator_committing_while_it_is_audited_audits_clean(
    audited: AuditedNetwork, capsys: pytest.CaptureFixture[str]
) -> None:
    payer = audited.network.bank("bank-b")
    stop = threading.Event()

    def pay() -> None:
        while not stop.is_set():
            payer.send_many([Instruction("bank-a", 1 + i) for i in range(20)], wait=True)

    paying = threading.Thread(target=pay)
    paying.start()
    regulator = audited.network.regulator("validator-3")
    try:
        deadline = time.monotonic() + 30
        while regulator.head().height < audited.head + 3:  # payments are committing
            assert time.monotonic() < deadline, "no payment committed in 30 s"
            time.sleep(0.05)
        code, document = audit(capsys, "--network", str(audited.directory),
                               "--validator", "validator-3")
    finally:
        stop.set()
        paying.join()

    [report] = document["reports"]
    assert code == 0, report["findings"]
    assert report["head"] > audited.head


def test_every_validator_holds_the_same_chain(
    audited: AuditedNetwork, capsys: pytest.CaptureFixture[str]
) -> None:
    validators = [arg for i in range(1, 5) for arg in ("--validator", f"validator-{i}")]

    code, document = audit(capsys, "--network", str(audited.directory), "--compare", *validators)

    assert code == 0, document
    assert [d for d in document["differences"] if d["diverged"]] == []


def test_a_copy_of_a_store_audits_clean_offline_and_is_not_written(
    audited: AuditedNetwork, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = digest(copy)

    code, document = offline(capsys, audited, copy)

    assert code == 0, document["reports"][0]["findings"]
    assert document["reports"][0]["blocks"] == audited.head
    assert digest(copy) == before


def test_the_summary_table_and_progress_line_name_every_check(
    audited: AuditedNetwork, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["audit", "--store", str(copy), "--network", str(audited.directory)])

    captured = capsys.readouterr()
    assert code == 0
    for check in ("parent_hash", "seals", "signatures", "state_root", "conservation",
                  "head_state"):
        assert check in captured.out
    assert "clean" in captured.out
    assert f"{audited.head:,}/{audited.head:,} blocks" in captured.err
    assert "tx/s" in captured.err


# --- tampered copies ---------------------------------------------------------------------


def test_a_changed_balance_is_named_at_the_head(
    audited: AuditedNetwork, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(copy, "UPDATE accounts SET balance = balance + 1000 WHERE id = 'bank-a'")

    code, document = offline(capsys, audited, copy)

    assert code == 1
    assert first_bad(document) == audited.head
    [finding] = findings_at(document, audited.head)
    assert finding["check"] == "head_state" and finding["detail"].startswith("bank-a: balance")


def test_a_changed_transfer_amount_breaks_its_signature_and_its_block(
    audited: AuditedNetwork, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, body = a_transfer(copy, SETTLED)
    changed = tx_pb.TransactionBody.FromString(body)
    changed.transfer.amount += 1_000_000
    write(copy, "UPDATE transactions SET body = ? WHERE key = ?",
          changed.SerializeToString(), key)
    height = key >> INDEX_BITS

    code, document = offline(capsys, audited, copy)

    assert code == 1
    assert first_bad(document) == height
    assert {"signatures", "transactions", "transactions_root", "state_root"} <= checks_at(
        document, height)


def test_a_changed_outcome_is_named_with_the_replayed_one(
    audited: AuditedNetwork, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, _ = a_transfer(copy, SETTLED)
    write(copy, "UPDATE transactions SET outcome = ? WHERE key = ?", QUEUED, key)
    height, index = key >> INDEX_BITS, key & ((1 << INDEX_BITS) - 1)

    code, document = offline(capsys, audited, copy)

    assert code == 1
    assert first_bad(document) == height
    # Sealed twice over: the root the validators signed, and the replay.
    assert checks_at(document, height) == {"receipts_root", "receipts"}
    [finding] = [f for f in findings_at(document, height) if f["check"] == "receipts"]
    assert f"transaction {index}" in finding["detail"]
    assert "QUEUED held, replay gives SETTLED" in finding["detail"]


def test_a_forged_seal_is_named(
    audited: AuditedNetwork, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    height = a_busy_block(copy)
    with sqlite3.connect(copy) as conn:
        (raw,) = conn.execute("SELECT seals FROM blocks WHERE height = ?", (height,)).fetchone()
    sealed = block_pb.Block.FromString(raw)
    seal = sealed.seals[0]
    seal.signature = bytes([seal.signature[0] ^ 1]) + seal.signature[1:]
    write(copy, "UPDATE blocks SET seals = ? WHERE height = ?", sealed.SerializeToString(), height)

    code, document = offline(capsys, audited, copy)

    assert code == 1
    assert first_bad(document) == height
    details = [f["detail"] for f in findings_at(document, height) if f["check"] == "seals"]
    assert f"seal by {seal.validator!r} does not verify against this block's hash" in details


def test_a_removed_block_is_named_missing(
    audited: AuditedNetwork, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    height = 2
    assert height < audited.head
    write(copy, "DELETE FROM blocks WHERE height = ?", height)
    write(copy, "DELETE FROM transactions WHERE key >> 20 = ?", height)
    write(copy, "DELETE FROM settlements WHERE key >> 20 = ?", height)

    code, document = offline(capsys, audited, copy)

    assert code == 1
    assert first_bad(document) == height
    assert findings_at(document, height) == [{
        "check": "height",
        "detail": f"block {height} missing: the next block the source holds is {height + 1}",
    }]
    assert "parent_hash" in checks_at(document, height + 1)


def test_a_removed_head_block_is_named_missing(
    audited: AuditedNetwork, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(copy, "DELETE FROM blocks WHERE height = ?", audited.head)

    code, document = offline(capsys, audited, copy)

    assert code == 1
    assert first_bad(document) == audited.head
    assert "height" in checks_at(document, audited.head)


def test_two_transactions_swapped_in_a_block_break_its_transactions_root(
    audited: AuditedNetwork, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    height = a_busy_block(copy)
    first, second = height << INDEX_BITS, (height << INDEX_BITS) + 1
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE transactions SET key = -1 WHERE key = ?", (first,))
        conn.execute("UPDATE transactions SET key = ? WHERE key = ?", (first, second))
        conn.execute("UPDATE transactions SET key = ? WHERE key = -1", (second,))

    code, document = offline(capsys, audited, copy)

    assert code == 1
    assert first_bad(document) == height
    assert "transactions_root" in checks_at(document, height)


def test_a_changed_header_byte_is_named_by_hash_and_seals(
    audited: AuditedNetwork, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    height = 2
    assert height < audited.head
    with sqlite3.connect(copy) as conn:
        (header,) = conn.execute(
            "SELECT header FROM blocks WHERE height = ?", (height,)).fetchone()
    # The last byte belongs to the receipts root (the last field), so the header still
    # decodes.
    write(copy, "UPDATE blocks SET header = ? WHERE height = ?",
          header[:-1] + bytes([header[-1] ^ 0x01]), height)

    code, document = offline(capsys, audited, copy)

    assert code == 1
    assert first_bad(document) == height
    assert {"header_hash", "seals", "receipts_root"} <= checks_at(document, height)
    assert "parent_hash" in checks_at(document, height + 1)


def test_compare_names_the_first_height_where_two_copies_differ(
    audited: AuditedNetwork, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, _ = a_transfer(copy, SETTLED)
    write(copy, "UPDATE transactions SET outcome = ? WHERE key = ?", QUEUED, key)

    code, document = audit(capsys, "--network", str(audited.directory), "--compare",
                           "--store", str(audited.pristine), "--store", str(copy))

    assert code == 1
    [difference] = document["differences"]
    assert difference["height"] == key >> INDEX_BITS
    assert difference["what"].startswith("receipts")


# --- could not run -----------------------------------------------------------------------


def test_a_missing_or_foreign_file_cannot_be_audited(
    audited: AuditedNetwork, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = tmp_path / "notes.db"
    foreign.write_bytes(b"not a database at all, just some text" * 100)

    genesis = str(audited.directory / "genesis.json")
    for path in (tmp_path / "missing.db", foreign):
        code = main(["audit", "--store", str(path), "--genesis", genesis])
        captured = capsys.readouterr()
        assert code == 2
        assert captured.err.startswith("straits audit: could not run: ")
        assert str(path) in captured.err


def test_a_validator_that_does_not_answer_cannot_be_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A network that was set up but never started: nothing listens on its ports.
    layout = init_network(tmp_path / "idle", NetworkPlan(base_port=free_base_port()),
                          now=dt.datetime.now(dt.UTC))

    code = main(["audit", "--quiet", "--network", str(layout.directory)])

    assert code == 2
    assert "could not run: validator-1: GetHead: UNAVAILABLE" in capsys.readouterr().err


def test_without_a_network_or_a_genesis_there_is_nothing_to_audit(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STRAITS_NETWORK", raising=False)

    code = main(["audit", "--quiet"])

    assert code == 2
    assert "expected --genesis FILE or --network DIR" in capsys.readouterr().err
