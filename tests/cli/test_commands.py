"""The `straits` client commands against a running in-process network, as a user types
them: `--network DIR --as PARTICIPANT`, tables by default, `--json` for scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clients.cli.main import main
from tests.bank.network import Network


def straits(
    network: Network,
    capsys: pytest.CaptureFixture[str],
    participant: str,
    *argv: str,
    expect: int = 0,
) -> Any:
    """Runs one command as ``participant``; returns its JSON answer (or text with --table)."""
    table = argv[:1] == ("--table",)
    args = [*argv[table:], "--network", str(network.layout.directory), "--as", participant]
    status = main(args if table else ["--json", *args])
    out, err = capsys.readouterr()
    assert status == expect, f"straits {' '.join(args)} -> {status}: {err}"
    if expect:
        return err
    return out if table else json.loads(out)


@pytest.fixture(scope="module", autouse=True)
def funded(network: Network) -> None:
    network.central_bank_client().issue("bank-b", 100_000, "bond-b")


def test_issue_send_and_balance(network: Network, capsys: pytest.CaptureFixture[str]) -> None:
    before = straits(network, capsys, "bank-a", "balance")["balance"]
    commit = straits(network, capsys, "central-bank", "issue", "bank-a", "1,000.00", "bond-1")
    assert commit["outcome"] == "applied", commit
    before += 100_000

    payment = straits(
        network, capsys, "bank-a", "send", "bank-b", "SGD 25", "--reference", "invoice 9"
    )

    assert (payment["status"], payment["payee"], payment["amount"]) == ("settled", "bank-b", 2500)
    assert straits(network, capsys, "bank-a", "balance")["balance"] == before - 2500
    table = straits(network, capsys, "bank-a", "--table", "history", "--status", "settled")
    assert "invoice 9" in table and table.splitlines()[0].split()[:3] == [
        "TRANSFER_ID",
        "DIRECTION",
        "PAYER",
    ]


def test_send_file_pays_each_line_once_even_when_sent_twice(
    network: Network, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    payments = tmp_path / "payments.csv"
    payments.write_text(
        "payee,amount,priority,reference\n"
        "bank-b,100,urgent,salary 1\n"
        "nobody,5,,lost\n"
        "bank-b,200,normal,salary 2\n"
    )
    before = straits(network, capsys, "bank-a", "balance")["balance"]

    target = ["--network", str(network.layout.directory), "--as", "bank-a"]
    statuses = []
    for _ in range(2):
        statuses.append(main(["--json", "send-file", str(payments), "--minor", *target]))
        results = json.loads(capsys.readouterr().out)
        assert [r["status"] for r in results] == ["settled", "refused", "settled"], results
        assert results[1]["reason"] == "unknown_account"

    assert statuses == [1, 1]  # a refused line makes the command fail, every time
    after = straits(network, capsys, "bank-a", "balance")["balance"]
    assert after == before - 300
    history = straits(network, capsys, "bank-a", "history", "--counterparty", "bank-b")
    salaries = [p for p in history if p["reference"].startswith("salary")]
    assert sorted(p["amount"] for p in salaries) == [100, 200]


def test_queue_hold_release_and_cancel(
    network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    queued = straits(network, capsys, "bank-c", "send", "bank-a", "40", "--minor")
    assert queued["status"] == "queued", queued
    tid = queued["transfer_id"]

    assert [p["transfer_id"] for p in straits(network, capsys, "bank-c", "queue")] == [tid]
    assert straits(network, capsys, "bank-c", "hold", tid)["held"] is True
    assert straits(network, capsys, "bank-c", "release", tid)["held"] is False
    urgent = straits(network, capsys, "bank-c", "reprioritise", tid, "urgent")
    assert urgent["priority"] == "urgent"
    cancelled = straits(network, capsys, "bank-c", "cancel", tid)
    assert cancelled["status"] == "cancelled" and cancelled["operation"]["outcome"] == "applied"
    refused = straits(network, capsys, "bank-c", "cancel", tid, expect=1)
    assert "FAILED_PRECONDITION: not_queued" in refused


def test_watch_replays_settlements_from_a_height(
    network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    payment = straits(network, capsys, "bank-b", "send", "bank-a", "0.77", "--reference", "w")
    out = straits(
        network,
        capsys,
        "bank-a",
        "--table",
        "watch",
        "--from-height",
        str(payment["height"]),
        "--direction",
        "in",
        "--count",
        "1",
    )
    assert payment["transfer_id"] in out and "settled" in out


def test_validators_lists_the_set_and_their_health(
    network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    validators = straits(network, capsys, "regulator", "validators")
    assert [(v["id"], v["health"]) for v in validators] == [
        (f"validator-{i}", "serving") for i in range(1, 5)
    ]


def test_explicit_files_and_refusals(
    network: Network, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    files = network.client_tls("bank-b")
    explicit = [
        "--address",
        network.address("bank-b"),
        "--cert",
        str(files.certificate),
        "--key",
        str(files.key),
        "--ca",
        str(files.ca),
    ]
    assert main(["--json", "balance", *explicit]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "bank-b"

    foreign = ["--address", network.address("bank-a"), *explicit[2:]]
    assert main(["balance", *foreign]) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err
    assert main(["balance", "--address", network.address("bank-a")]) == 1
    assert "--cert, --key and --ca" in capsys.readouterr().err
    assert straits(network, capsys, "bank-z", "balance", expect=1).count("bank-z") == 1
