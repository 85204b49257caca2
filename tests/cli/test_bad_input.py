"""Every command fed bad values, as people mistype them: each ends with one line on
stderr that says why and a non-zero status, never a traceback, and moves no money."""

from __future__ import annotations

from pathlib import Path

import pytest
from straits.bank.v1 import bank_pb2 as pb

from clients.cli.main import main
from tests.bank.network import Network

UNKNOWN_ID = "ab" * 32


def _cases(tmp: Path) -> list[tuple[str, list[str]]]:
    garbage = tmp / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 4)
    bad_csv = tmp / "bad.csv"
    bad_csv.write_text("bank-b,1.001,normal,too many decimals\n")
    bad_xml = tmp / "bad.xml"
    bad_xml.write_text("<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pacs.009.001.08'>")
    not_toml = tmp / "node.toml"
    not_toml.write_text("this is = not [toml")
    missing = str(tmp / "missing.xml")
    return [
        ("amount: words", ["send", "bank-b", "ten"]),
        ("amount: too many decimals", ["send", "bank-b", "1.001"]),
        ("amount: past int64", ["send", "bank-b", "99999999999999999999"]),
        ("amount: negative", ["send", "bank-b", "-5"]),
        ("amount: zero", ["send", "bank-b", "0.00"]),
        ("amount: another currency", ["send", "bank-b", "USD 5"]),
        ("amount: bad thousands", ["send", "bank-b", "1,00"]),
        ("amount: minor with decimals", ["send", "bank-b", "1.5", "--minor"]),
        ("amount: missing", ["send", "bank-b"]),
        ("payee: unknown", ["send", "nobody", "1.00"]),
        ("payee: empty", ["send", "", "1.00"]),
        ("priority: unknown", ["send", "bank-b", "1", "--priority", "fast"]),
        ("reference: too long", ["send", "bank-b", "1", "--reference", "r" * 300]),
        ("request id: too long", ["send", "bank-b", "1", "--request-id", "q" * 100]),
        ("send-file: missing", ["send-file", missing]),
        ("send-file: binary", ["send-file", str(garbage)]),
        ("send-file: csv amount", ["send-file", str(bad_csv)]),
        ("send-file: broken xml", ["send-file", str(bad_xml)]),
        ("send-file: report with csv", ["send-file", str(bad_csv), "--report", "-"]),
        ("history: negative limit", ["history", "--limit", "-1"]),
        ("history: height words", ["history", "--from-height", "x"]),
        ("history: status", ["history", "--status", "lost"]),
        ("watch: count", ["watch", "--count", "many"]),
        ("cancel: not hex", ["cancel", "zz"]),
        ("hold: unknown id", ["hold", UNKNOWN_ID]),
        ("release: short id", ["release", "abcd"]),
        ("reprioritise: priority", ["reprioritise", UNKNOWN_ID, "fast"]),
        ("redeem: zero", ["redeem", "0", "bond"]),
        ("redeem: more than held", ["redeem", "99999999999", "bond"]),
        ("statement: date", ["statement", "--date", "2026-13-45"]),
        ("statement: format", ["statement", "--format", "pdf"]),
        ("status-report: missing", ["status-report", missing]),
        ("balance: unknown participant", ["balance", "--as", "bank-zz"]),
        ("balance: no network", ["balance", "--network", str(tmp / "none")]),
        ("balance: explicit without files", ["balance", "--address", "127.0.0.1:1"]),
        ("issue: as a bank", ["issue", "bank-b", "1.00", "bond"]),
        ("supply: as a bank", ["supply"]),
        ("central bank: issue decimals", ["issue", "bank-b", "1.001", "bond", "--as",
                                          "central-bank"]),
        ("central bank: issue to nobody", ["issue", "nobody", "1.00", "bond", "--as",
                                           "central-bank"]),
        ("central bank: admit bad key", ["admit", "bank-x", "notakey", "--as", "central-bank"]),
        ("central bank: suspend nobody", ["suspend", "nobody", "--as", "central-bank"]),
        ("validators: no network", ["validators", "--network", str(tmp / "none")]),
        ("network init: no validators", ["network", "init", "--dir", str(tmp / "n1"),
                                         "--validators", "0"]),
        ("network init: currency", ["network", "init", "--dir", str(tmp / "n2"),
                                    "--currency", "sg1"]),
        ("network init: decimals", ["network", "init", "--dir", str(tmp / "n3"),
                                    "--decimals", "99"]),
        ("network init: ports", ["network", "init", "--dir", str(tmp / "n4"),
                                 "--base-port", "70000"]),
        ("network up: nothing there", ["network", "up", "--dir", str(tmp / "none")]),
        ("validator: missing config", ["validator", "--config", missing]),
        ("bank: broken config", ["bank", "--config", str(not_toml)]),
        ("load: duration", ["load", "--duration", "-1"]),
        ("load: rate", ["load", "--rate", "fast"]),
        ("no command", []),
        ("unknown command", ["frobnicate"]),
    ]


def test_every_command_refuses_bad_values_in_one_line_and_moves_no_money(
    network: Network, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRAITS_NETWORK", str(network.layout.directory))
    monkeypatch.setenv("STRAITS_AS", "bank-a")
    bank = network.bank("bank-a")
    before = _money(bank)

    failures = []
    for what, argv in _cases(tmp_path):
        status = main(argv)
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        if status == 0 or len(lines) != 1 or not lines[0].startswith("straits"):
            failures.append(f"{what}: straits {' '.join(argv)} -> {status}, stderr {err!r}")
    assert not failures, "\n".join(failures)
    assert _money(bank) == before


def _money(bank) -> tuple[int, list[tuple[str, int]]]:
    """The balance and every payment that moved or waits to move money."""
    moving = [(p.transfer_id.hex(), p.status) for p in bank.history()
              if p.status in (pb.PAYMENT_STATUS_SETTLED, pb.PAYMENT_STATUS_QUEUED,
                              pb.PAYMENT_STATUS_PENDING)]
    return bank.balance().balance, moving


def test_amounts_show_in_the_currency_in_tables_and_in_minor_units_in_json(
    network: Network, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRAITS_NETWORK", str(network.layout.directory))
    # bank-b: other tests of this network keep bank-c without funds, so that it queues.
    network.central_bank_client().issue("bank-b", 1_234_567, "bond-table")
    monkeypatch.setenv("STRAITS_AS", "bank-b")

    assert main(["send", "bank-a", "SGD 1,000.50", "--reference", "table"]) == 0
    table = capsys.readouterr().out
    assert "1,000.50" in table.splitlines()[1]
    assert main(["--json", "history", "--limit", "1"]) == 0
    assert '"amount": 100050' in capsys.readouterr().out
    assert main(["history", "--limit", "1", "--minor"]) == 0
    assert " 100050 " in capsys.readouterr().out
