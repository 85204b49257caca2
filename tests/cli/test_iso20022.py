"""ISO 20022 against a running network, as a bank's back office uses it: a pacs.009 of
1,000 transfers settles and its pacs.002 reports each; the day's camt.053 matches the
bank's history entry for entry, issuances and redemptions included, and its balances
agree with its entries, also after the bank's node restarted; a bad file is refused
whole and changes nothing."""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from pyiso20022.camt import camt_053_001_08 as camt053
from straits.bank.v1 import bank_pb2 as pb
from straits.ledger.v1 import transaction_pb2 as tx_pb

from clients.cli.main import main
from clients.iso20022 import (
    FileTransfer,
    IsoBank,
    read_camt053,
    read_pacs002,
    write_pacs009,
)
from clients.iso20022.pacs009 import split_reference
from clients.sdk import BankClient
from clients.sdk.bank import ALL_KINDS
from ledger import genesis as genesis_file
from ledger.genesis import Genesis
from services.participant.bank.node import BankNode
from tests.bank.network import Network

TRANSFERS = 1000


@pytest.fixture(scope="module")
def genesis(network: Network) -> Genesis:
    return genesis_file.load(network.layout.genesis)


def _cli(network: Network, participant: str, *argv: str) -> list[str]:
    return [*argv, "--network", str(network.layout.directory), "--as", participant]


def _transfers(payer: str, payees: list[str], count: int, seed: int) -> list[FileTransfer]:
    rng = random.Random(seed)
    return [
        FileTransfer(0, f"E2E-{seed}-{i}", str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                     payer, payees[i % len(payees)], rng.randint(1, 50_000),
                     tx_pb.PRIORITY_URGENT if i % 10 == 0 else tx_pb.PRIORITY_NORMAL)
        for i in range(count)
    ]


def _balances(network: Network, *banks: str) -> dict[str, int]:
    return {b: network.bank(b).balance().balance for b in banks}


def test_a_thousand_transfer_pacs009_settles_and_its_pacs002_reports_each(
    network: Network, genesis: Genesis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    network.central_bank_client().issue("bank-a", 100_000_000_00, "bond-iso-1000")
    transfers = _transfers("bank-a", ["bank-b", "bank-c"], TRANSFERS, seed=1)
    payments = tmp_path / "payments.xml"
    payments.write_bytes(write_pacs009("TRSY-1000", transfers, genesis, dt.datetime.now(dt.UTC)))
    report = tmp_path / "status.xml"
    before = _balances(network, "bank-a", "bank-b", "bank-c")

    status = main(_cli(network, "bank-a", "send-file", str(payments), "--report", str(report)))
    table = capsys.readouterr().out

    assert status == 0
    assert table.count("ACSC") == TRANSFERS
    pacs002 = read_pacs002(report.read_bytes())
    group = pacs002.orgnl_grp_inf_and_sts[0]
    assert (group.orgnl_msg_id, group.orgnl_nb_of_txs, group.grp_sts) == (
        "TRSY-1000", str(TRANSFERS), "ACSC")
    assert [(t.orgnl_end_to_end_id, t.orgnl_uetr, t.tx_sts) for t in pacs002.tx_inf_and_sts] == [
        (t.end_to_end_id, t.uetr, "ACSC") for t in transfers]

    received = Counter[str]()
    for t in transfers:
        received[t.payee] += t.amount
    total = sum(t.amount for t in transfers)
    assert _balances(network, "bank-a", "bank-b", "bank-c") == {
        "bank-a": before["bank-a"] - total,
        "bank-b": before["bank-b"] + received["bank-b"],
        "bank-c": before["bank-c"] + received["bank-c"],
    }
    # Each transfer keeps its UETR and end-to-end id, and each report row names its payment.
    history = {p.reference: p for p in network.bank("bank-a").history(page_size=1000)}
    for transfer, row in zip(transfers, pacs002.tx_inf_and_sts, strict=True):
        payment = history[f"{transfer.uetr} {transfer.end_to_end_id}"]
        assert (payment.amount, payment.payee, payment.status) == (
            transfer.amount, transfer.payee, pb.PAYMENT_STATUS_SETTLED)
        assert payment.transfer_id.hex().startswith(row.acct_svcr_ref)

    # The same file again pays nothing twice: each transfer's request id is its UETR.
    assert main(_cli(network, "bank-a", "send-file", str(payments), "--report", "-")) == 0
    again = read_pacs002(capsys.readouterr().out.encode())
    assert {t.tx_sts for t in again.tx_inf_and_sts} == {"ACSC"}
    assert _balances(network, "bank-a")["bank-a"] == before["bank-a"] - total


def test_the_days_camt053_matches_the_banks_history(
    network: Network, genesis: Genesis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    network.central_bank_client().issue("bank-b", 5_000_00, "bond-iso-statement-b")
    network.central_bank_client().issue("bank-c", 5_000_00, "bond-iso-statement-c")
    bank_b = network.bank("bank-b")
    bank_b.send("bank-c", 12_34, reference="statement out", wait=True)
    network.bank("bank-c").send("bank-b", 56_78, reference="statement in", wait=True)
    today = dt.datetime.now(dt.UTC).date()
    statement_file = tmp_path / "statement.xml"

    status = main(_cli(network, "bank-b", "statement", "--date", today.isoformat(),
                       "--format", "camt.053", "--output", str(statement_file)))

    assert status == 0, capsys.readouterr().err
    statement = read_camt053(statement_file.read_bytes()).stmt[0]
    balance = bank_b.balance().balance
    start = dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC).timestamp() * 1000
    settled = [p for p in bank_b.history(statuses=[pb.PAYMENT_STATUS_SETTLED], page_size=1000,
                                         kinds=ALL_KINDS)
               if start <= p.settled_time_ms < start + 86_400_000]
    assert {p.kind for p in settled} == {pb.PAYMENT_KIND_TRANSFER, pb.PAYMENT_KIND_ISSUANCE}

    def money(minor: int) -> Decimal:
        return Decimal(minor).scaleb(-genesis.currency.decimals)

    entries = {e.addtl_ntry_inf.split(" ")[1]: e for e in statement.ntry}
    assert set(entries) == {p.transfer_id.hex() for p in settled}
    for payment in settled:
        entry = entries[payment.transfer_id.hex()]
        incoming = payment.direction == pb.DIRECTION_INCOMING
        assert (entry.amt.value, entry.amt.ccy, entry.cdt_dbt_ind.value) == (
            money(payment.amount), "SGD", "CRDT" if incoming else "DBIT")
        refs = entry.ntry_dtls[0].tx_dtls[0].refs
        if payment.kind == pb.PAYMENT_KIND_TRANSFER:
            end_to_end, uetr = split_reference(payment.reference)
            assert (refs.end_to_end_id, refs.uetr) == (end_to_end[:35] or None, uetr or None)
        else:
            assert (refs.end_to_end_id, refs.uetr) == (payment.reference[:35], None)
    balances = {b.tp.cd_or_prtry.cd: b for b in statement.bal}
    closing = balances["CLBD"].amt.value * (1 if balances["CLBD"].cdt_dbt_ind.value == "CRDT"
                                            else -1)
    opening = balances["OPBD"].amt.value * (1 if balances["OPBD"].cdt_dbt_ind.value == "CRDT"
                                            else -1)
    net = sum(money(p.amount if p.direction == pb.DIRECTION_INCOMING else -p.amount)
              for p in settled)
    assert closing == money(balance)  # nothing settled after the day yet
    assert opening + net == closing

    # The same day as JSON, in minor units, for scripts.
    assert main(["--json", *_cli(network, "bank-b", "statement", "--date", "today")]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert (money(as_json["opening"]), money(as_json["closing"])) == (opening, closing)
    assert {e["transfer_id"] for e in as_json["entries"]} == set(entries)


def _signed_balance(balance: camt053.CashBalance8) -> Decimal:
    return balance.amt.value * (1 if balance.cdt_dbt_ind.value == "CRDT" else -1)


def test_a_day_of_issuance_transfers_and_redemption_balances_to_the_banks_history(
    network: Network, genesis: Genesis, capsys: pytest.CaptureFixture[str]
) -> None:
    central_bank = network.central_bank_client()
    iso = IsoBank(BankClient(network.channel("bank-c", network.client_tls("bank-c"))), genesis)
    bank_c = iso.bank
    central_bank.issue("bank-b", 1_000_00, "bond-day-b")
    issued = central_bank.issue("bank-c", 2_000_00, "bond-day-c1")
    bank_c.send("bank-a", 300_00, reference="day out", wait=True)
    network.bank("bank-b").send("bank-c", 120_00, reference="day in", wait=True)
    redeemed = bank_c.redeem(500_00, "bond-day-c1", request_id="redeem-bond-day-c1")
    issued_again = central_bank.issue("bank-c", 50_00, "bond-day-c2")
    today = dt.datetime.now(dt.UTC).date()

    statement = read_camt053(iso.statement(today)).stmt[0]
    before = read_camt053(iso.statement(today - dt.timedelta(days=1))).stmt[0]

    def money(minor: int) -> Decimal:
        return Decimal(minor).scaleb(-genesis.currency.decimals)

    start = dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC).timestamp() * 1000
    history = [p for p in bank_c.history(statuses=[pb.PAYMENT_STATUS_SETTLED], kinds=ALL_KINDS,
                                         page_size=1000)
               if start <= p.settled_time_ms < start + 86_400_000]
    kinds = {pb.PAYMENT_KIND_TRANSFER: "transfer", pb.PAYMENT_KIND_ISSUANCE: "issuance",
             pb.PAYMENT_KIND_REDEMPTION: "redemption"}
    # Entry for entry, oldest first, the statement is the bank's history of the day.
    assert sorted(
        (e.addtl_ntry_inf, e.cdt_dbt_ind.value, e.amt.value, int(e.ntry_ref))
        for e in statement.ntry
    ) == sorted(
        (f"{kinds[p.kind]} {p.transfer_id.hex()}",
         "CRDT" if p.direction == pb.DIRECTION_INCOMING else "DBIT", money(p.amount),
         p.settled_height)
        for p in history
    )
    by_id = {p.transfer_id: p for p in history}
    assert (by_id[issued.transaction_id].kind, by_id[issued.transaction_id].settled_height) == (
        pb.PAYMENT_KIND_ISSUANCE, issued.height)
    assert by_id[issued_again.transaction_id].reference == "bond-day-c2"
    redemption = by_id[redeemed.transaction_id]
    assert (redemption.kind, redemption.payee, redemption.request_id, redemption.amount) == (
        pb.PAYMENT_KIND_REDEMPTION, "central-bank", "redeem-bond-day-c1", 500_00)

    entries = {e.addtl_ntry_inf: e for e in statement.ntry}
    issuance = entries[f"issuance {issued.transaction_id.hex()}"]
    code = issuance.bk_tx_cd
    assert (code.domn.cd, code.domn.fmly.cd, code.domn.fmly.sub_fmly_cd, code.prtry.cd) == (
        "PMNT", "MCOP", "OTHR", "ISSUANCE")
    assert issuance.ntry_dtls[0].tx_dtls[0].refs.end_to_end_id == "bond-day-c1"
    code = entries[f"redemption {redeemed.transaction_id.hex()}"].bk_tx_cd
    assert (code.domn.fmly.cd, code.prtry.cd) == ("MDOP", "REDEMPTION")

    # Opening plus the day's entries is the closing balance, which is the balance now;
    # the day before has no entries and closes where this day opens: at zero, since
    # every token this bank ever held was issued today.
    balances = {b.tp.cd_or_prtry.cd: _signed_balance(b) for b in statement.bal}
    net = sum(money(p.amount if p.direction == pb.DIRECTION_INCOMING else -p.amount)
              for p in history)
    assert balances["CLBD"] == money(bank_c.balance().balance)
    assert balances["OPBD"] + net == balances["CLBD"]
    summary = statement.txs_summry.ttl_ntries
    assert (int(summary.nb_of_ntries), summary.ttl_net_ntry.amt) == (len(history), abs(net))
    earlier = {b.tp.cd_or_prtry.cd: _signed_balance(b) for b in before.bal}
    assert before.ntry == []
    assert earlier == {"OPBD": 0, "CLBD": 0} and balances["OPBD"] == 0
    assert statement.addtl_stmt_inf is None

    # Listings that filter on nothing still hold transfers only.
    assert {p.kind for p in bank_c.history(page_size=1000)} == {pb.PAYMENT_KIND_TRANSFER}
    assert main(["--json", *_cli(network, "bank-c", "history", "--kind", "issuance",
                                 "--kind", "redemption")]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {r["kind"] for r in listed} == {"issuance", "redemption"}
    # Newest first; earlier tests on this network issued to bank-c too.
    assert [(r["kind"], r["transfer_id"], r["reference"]) for r in listed[:3]] == [
        ("issuance", issued_again.transaction_id.hex(), "bond-day-c2"),
        ("redemption", redeemed.transaction_id.hex(), "bond-day-c1"),
        ("issuance", issued.transaction_id.hex(), "bond-day-c1"),
    ]


def test_a_bad_file_is_refused_whole_and_changes_nothing(
    network: Network, genesis: Genesis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    network.central_bank_client().issue("bank-b", 1_000_00, "bond-iso-bad")
    good = write_pacs009("BAD-1", _transfers("bank-b", ["bank-a", "bank-c"], 50, seed=2),
                         genesis, dt.datetime.now(dt.UTC)).decode()
    last = good.rindex('Ccy="SGD"')
    bad_files = {
        "wrong currency in the last transfer": good[:last] + 'Ccy="EUR"' + good[last + 9:],
        "unknown BIC": good.replace("<BICFI>BNKCSGX0</BICFI>", "<BICFI>NOBKSGX0</BICFI>"),
        "cut short": good[: len(good) // 2],
        "another bank as debtor": good.replace("<BICFI>BNKBSGX0", "<BICFI>BNKASGX0", 1),
    }
    bank_b = network.bank("bank-b")
    before = (bank_b.balance().balance, len(list(bank_b.history(page_size=1000))))

    for what, text in bad_files.items():
        path = tmp_path / "bad.xml"
        path.write_text(text)
        status = main(_cli(network, "bank-b", "send-file", str(path)))
        err = capsys.readouterr().err
        assert status == 1, what
        assert len(err.strip().splitlines()) == 1 and "line " in err, f"{what}: {err}"

    assert (bank_b.balance().balance, len(list(bank_b.history(page_size=1000)))) == before


def test_the_sdk_sends_a_file_and_reports_queued_transfers_settling_later(
    network: Network, genesis: Genesis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    iso = IsoBank(BankClient(network.channel("bank-c", network.client_tls("bank-c"))), genesis)
    network.central_bank_client().issue("bank-c", 1_00, "bond-iso-sdk")
    balance = iso.bank.balance().balance
    transfers = [
        FileTransfer(0, "SDK-1", str(uuid.uuid4()), "bank-c", "bank-a", 1_00),
        FileTransfer(0, "SDK-2", str(uuid.uuid4()), "bank-c", "bank-b", balance + 1_00),
    ]
    data = write_pacs009("SDK-FILE", transfers, genesis, dt.datetime.now(dt.UTC))

    sent = iso.send_pacs009(data)

    assert [o.tx_status for o in sent.outcomes] == ["ACSC", "ACSP"]
    assert read_pacs002(sent.report).orgnl_grp_inf_and_sts[0].grp_sts == "ACSP"
    queued = sent.payments[1]
    assert queued is not None and queued.status == pb.PAYMENT_STATUS_QUEUED
    network.central_bank_client().issue("bank-c", 10_00, "bond-iso-sdk-cover")
    # The node reports the settlement once it has followed the block that made it.
    events = iso.bank.watch(from_height=queued.committed_height, timeout=30)
    settled = next(e.payment for e in events if e.payment.transfer_id == queued.transfer_id
                   and e.payment.status == pb.PAYMENT_STATUS_SETTLED)
    assert settled.amount == balance + 1_00
    later = read_pacs002(iso.status_report(data))
    assert [t.tx_sts for t in later.tx_inf_and_sts] == ["ACSC", "ACSC"]
    assert later.orgnl_grp_inf_and_sts[0].grp_sts == "ACSC"

    # The CLI gives the same report for the file.
    path = tmp_path / "sent.xml"
    path.write_bytes(data)
    assert main(_cli(network, "bank-c", "status-report", str(path))) == 0
    from_cli = read_pacs002(capsys.readouterr().out.encode())
    assert [(t.orgnl_uetr, t.tx_sts) for t in from_cli.tx_inf_and_sts] == [
        (t.uetr, "ACSC") for t in transfers]


def test_a_uetr_sent_again_with_other_content_is_rejected_not_paid(
    network: Network, genesis: Genesis
) -> None:
    iso = IsoBank(BankClient(network.channel("bank-b", network.client_tls("bank-b"))), genesis)
    network.central_bank_client().issue("bank-b", 10_00, "bond-iso-uetr")
    first = FileTransfer(0, "ONCE", str(uuid.uuid4()), "bank-b", "bank-a", 1_00)
    sent = iso.send_pacs009(write_pacs009("UETR-1", [first], genesis, dt.datetime.now(dt.UTC)))
    assert [o.tx_status for o in sent.outcomes] == ["ACSC"]
    balance = iso.bank.balance().balance

    changed = FileTransfer(0, "ONCE", first.uetr, "bank-b", "bank-a", 2_00)
    again = iso.send_pacs009(write_pacs009("UETR-2", [changed], genesis, dt.datetime.now(dt.UTC)))

    row = read_pacs002(again.report).tx_inf_and_sts[0]
    assert (row.tx_sts, row.sts_rsn_inf[0].rsn.cd) == ("RJCT", "AM05")
    assert again.refused == 1 and iso.bank.balance().balance == balance


def test_a_restarted_bank_node_catches_up_on_an_issuance_and_lists_it_once(
    network: Network, genesis: Genesis
) -> None:
    central_bank = network.central_bank_client()
    node = network.banks["bank-a"]
    before = central_bank.issue("bank-a", 10_00, "bond-restart-1")
    # Once a later transfer of its own is final, the node has followed the issuance too.
    network.bank("bank-a").send("bank-b", 1, reference="before restart", wait=True)
    assert node.height > before.height
    node.stop()
    while_down = central_bank.issue("bank-a", 20_00, "bond-restart-2")

    network.banks["bank-a"] = restarted = BankNode(node.config)
    restarted.start()
    iso = IsoBank(network.bank("bank-a"), genesis)
    statement = read_camt053(iso.statement(dt.datetime.now(dt.UTC).date())).stmt[0]

    issuances = [p.transfer_id for p in iso.bank.history(kinds=[pb.PAYMENT_KIND_ISSUANCE],
                                                         page_size=1000)]
    assert len(issuances) == len(set(issuances))
    assert {before.transaction_id, while_down.transaction_id} <= set(issuances)
    booked = [e.addtl_ntry_inf for e in statement.ntry if e.addtl_ntry_inf.startswith("issu")]
    assert sorted(booked) == sorted(f"issuance {i.hex()}" for i in issuances)
    balances = {b.tp.cd_or_prtry.cd: _signed_balance(b) for b in statement.bal}
    net = sum((e.amt.value if e.cdt_dbt_ind.value == "CRDT" else -e.amt.value)
              for e in statement.ntry)
    assert balances["OPBD"] + net == balances["CLBD"]
    assert balances["CLBD"] == Decimal(iso.bank.balance().balance).scaleb(
        -genesis.currency.decimals)
