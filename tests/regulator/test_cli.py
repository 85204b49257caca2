"""`straits ... --as regulator` as a person types it, against a real in-process network:
every read works, every write and every command of another seat is refused in words."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from clients.cli.main import main
from tests.regulator.conftest import Story


def straits(story: Story, capsys: pytest.CaptureFixture[str], participant: str, *argv: str,
            expect: int = 0) -> Any:
    args = ["--json", *argv, "--network", str(story.network.layout.directory),
            "--as", participant]
    status = main(args)
    out, err = capsys.readouterr()
    assert status == expect, f"straits {' '.join(args)} -> {status}: {err}"
    return err if expect else json.loads(out)


def test_regulator_reads_positions_supply_and_any_banks_queue_and_history(
    story: Story, capsys: pytest.CaptureFixture[str]
) -> None:
    positions = {a["id"]: a for a in straits(story, capsys, "regulator", "positions")}
    assert positions["bank-b"]["queued_out"] == 5_000 and positions["bank-b"]["balance"] == 2_500
    supply = straits(story, capsys, "regulator", "supply")
    assert supply["total_supply"] == story.issued
    queue = straits(story, capsys, "regulator", "queue", "--bank", "bank-b")
    assert [p["transfer_id"] for p in queue] == [story.queued.transfer_id.hex()]
    history = straits(story, capsys, "regulator", "history", "--bank", "bank-a")
    assert story.settled.transfer_id.hex() in {p["transfer_id"] for p in history}
    balance = straits(story, capsys, "regulator", "balance", "--bank", "bank-a")
    assert balance["id"] == "bank-a"


def test_regulator_reads_blocks_transactions_and_validators(
    story: Story, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = straits(story, capsys, "regulator", "blocks", "--from-height", "1", "--limit", "50")
    assert [b["height"] for b in blocks] == list(range(1, len(blocks) + 1))
    assert all(b["seals"] >= 3 and not b["redacted"] for b in blocks), blocks
    carried = {t for b in blocks for t in b["transaction_ids"]}
    assert story.queued.transfer_id.hex() in carried
    record = straits(story, capsys, "regulator", "transaction", story.queued.transfer_id.hex())
    assert (record["kind"], record["signer"], record["outcome"]) == ("transfer", "bank-b", "queued")
    assert record["body"]["payee"] == "bank-a"
    validators = straits(story, capsys, "regulator", "validators")
    assert {v["health"] for v in validators} == {"serving"}, validators


@pytest.mark.parametrize("argv", [
    ("send", "bank-a", "1"),
    ("issue", "bank-a", "1", "bond-x"),
    ("cancel", "00" * 32),
    ("redeem", "1", "bond-a"),
    ("suspend", "bank-a"),
])
def test_regulator_writes_are_refused_naming_who_may(
    story: Story, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    error = straits(story, capsys, "regulator", *argv, expect=1)
    assert "PERMISSION_DENIED" in error and "the regulator only reads" in error, error
    assert "may be used by a bank" in error or "may be used by the central bank" in error, error


def test_a_bank_asking_for_positions_is_told_who_may(
    story: Story, capsys: pytest.CaptureFixture[str]
) -> None:
    error = straits(story, capsys, "bank-a", "positions", expect=1)
    assert "PERMISSION_DENIED" in error and "UNIMPLEMENTED" not in error, error
    assert "the central bank or the regulator" in error and "'bank-a' is a bank" in error, error


def test_the_central_bank_asking_for_a_banks_queue_is_told_who_may(
    story: Story, capsys: pytest.CaptureFixture[str]
) -> None:
    error = straits(story, capsys, "central-bank", "queue", expect=1)
    assert "PERMISSION_DENIED" in error and "a bank or the regulator" in error, error


def test_a_bank_reads_only_its_own_queue(story: Story, capsys: pytest.CaptureFixture[str]) -> None:
    error = straits(story, capsys, "bank-a", "queue", "--bank", "bank-b", expect=1)
    assert "PERMISSION_DENIED" in error and "reads only its own payments" in error, error


def test_the_regulator_must_say_which_bank(story: Story,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    error = straits(story, capsys, "regulator", "history", expect=1)
    assert "--bank BANK" in error and "bank-a, bank-b" in error, error


def test_explicit_credentials_reaching_the_wrong_node_get_words_from_the_node(
    story: Story, capsys: pytest.CaptureFixture[str]
) -> None:
    network = story.network
    tls = network.client_tls("bank-a")
    status = main(["positions", "--address", network.address("bank-a"), "--cert",
                   str(tls.certificate), "--key", str(tls.key), "--ca", str(tls.ca)])
    error = capsys.readouterr().err
    assert status == 1 and "PERMISSION_DENIED" in error, error
    assert "served by the central bank's node" in error, error


def test_regulator_reads_positions_from_the_first_validator_that_answers(
    story: Story, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The same network, with validator-1 listed at an address where nothing listens.
    base = story.network.layout.directory
    index = json.loads((base / "network.json").read_text())
    absolute = {"ca", "genesis"}
    for key in absolute:
        index[key] = str(base / index[key])
    for entry in [*index["clients"], index["regulator"]]:
        entry["certificate"], entry["key"] = (str(base / entry["certificate"]),
                                              str(base / entry["key"]))
    for node in index["nodes"]:
        node["config"] = str(base / node["config"])
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{closed.getsockname()[1]}"
    index["nodes"][0]["address"] = dead
    assert index["nodes"][0]["id"] == "validator-1"
    (tmp_path / "network.json").write_text(json.dumps(index))

    status = main(["--json", "positions", "--network", str(tmp_path), "--as", "regulator"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert {a["id"] for a in json.loads(out)} >= {"bank-a", "bank-b"}


def test_a_bank_reads_blocks_redacted_to_its_own_transactions(
    story: Story, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = straits(story, capsys, "bank-a", "blocks", "--from-height", "1", "--limit", "50")
    assert blocks and all(b["redacted"] for b in blocks), blocks
    ids = {t for b in blocks for t in b["transaction_ids"]}
    assert story.queued.transfer_id.hex() in ids, "every id is listed, even others' payments"
    record = straits(story, capsys, "bank-a", "transaction", story.settled.transfer_id.hex())
    assert record["signer"] == "bank-a"
