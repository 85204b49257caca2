"""ISO 20022 messages without a network: pacs.009 read or refused with line and element,
pacs.002 and camt.053 written, every message parsing back and holding to the schema."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from pyiso20022.camt import camt_053_001_08 as camt053
from pyiso20022.pacs import pacs_002_001_10 as pacs002
from pyiso20022.pacs import pacs_009_001_08 as pacs009
from straits.ledger.v1 import transaction_pb2 as tx_pb

from clients.iso20022 import (
    FileTransfer,
    IsoFileError,
    Outcome,
    read_camt053,
    read_pacs002,
    read_pacs009,
    write_camt053,
    write_pacs002,
    write_pacs009,
)
from clients.iso20022.camt053 import ISSUANCE, REDEMPTION, Entry
from clients.iso20022.document import read, render, schema_errors
from ledger.genesis import Currency, Genesis, Parameters, ParticipantSpec, ValidatorSpec
from ledger.keys import PrivateKey

SAMPLES = Path(__file__).parent / "samples"
NOW = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)


def _genesis() -> Genesis:
    def spec(pid: str, role: str, bic: str) -> ParticipantSpec:
        return ParticipantSpec(pid, role, pid.title(), PrivateKey.generate().public_key, bic)

    genesis = Genesis(
        chain_id="iso-test",
        currency=Currency("SGD", 2),
        genesis_time_ms=0,
        participants=(
            spec("central-bank", "central_bank", "CBNKSGX0"),
            spec("bank-a", "bank", "BNKASGX0"),
            spec("bank-b", "bank", "BNKBSGX0"),
            spec("bank-c", "bank", "BNKCSGX0"),
            spec("regulator", "regulator", ""),
        ),
        validators=(ValidatorSpec("validator-1", PrivateKey.generate().public_key),),
        parameters=Parameters(),
    )
    return Genesis.from_dict(genesis.to_dict())


GENESIS = _genesis()


def _transfers(count: int) -> list[FileTransfer]:
    payees = ("bank-b", "bank-c")
    return [
        FileTransfer(0, f"E2E-{i}", str(uuid.UUID(int=i + 1, version=4)), "bank-a",
                     payees[i % 2], 100 + i,
                     tx_pb.PRIORITY_URGENT if i % 3 == 0 else tx_pb.PRIORITY_NORMAL)
        for i in range(count)
    ]


def _file(count: int = 3) -> bytes:
    return write_pacs009("MSG-1", _transfers(count), GENESIS, NOW)


def test_the_sample_pacs009_maps_to_transfers_of_the_sending_bank() -> None:
    file = read_pacs009((SAMPLES / "pacs009.xml").read_bytes(), GENESIS, payer="bank-a")

    assert file.message_id == "TRSY-20261203-0001"
    urgent, normal = file.transfers
    assert (urgent.payee, urgent.amount, urgent.priority) == (
        "bank-b", 100_000_000, tx_pb.PRIORITY_URGENT)
    assert (normal.payee, normal.amount, normal.priority) == (
        "bank-c", 25_000_050, tx_pb.PRIORITY_NORMAL)
    assert urgent.reference == "8a562c67-ca16-48ba-b074-65581be6f001 LIQ-7781"
    assert urgent.request_id == "uetr-8a562c67-ca16-48ba-b074-65581be6f001"
    assert urgent.line == 27 and normal.line == 53  # where each CdtTrfTxInf starts


@pytest.mark.parametrize(
    ("name", "document", "namespace", "root"),
    [
        ("pacs009.xml", pacs009.Document, "urn:iso:std:iso:20022:tech:xsd:pacs.009.001.08",
         "ficdt_trf"),
        ("pacs002.xml", pacs002.Document, "urn:iso:std:iso:20022:tech:xsd:pacs.002.001.10",
         "fito_fipmt_sts_rpt"),
        ("camt053.xml", camt053.Document, "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08",
         "bk_to_cstmr_stmt"),
    ],
)
def test_sample_messages_round_trip_through_the_generated_classes(
    name: str, document: type, namespace: str, root: str
) -> None:
    data = (SAMPLES / name).read_bytes()
    message = read(data, document, namespace, name).message
    written = render(message, namespace)
    again = read(written, document, namespace, name).message

    assert again == message
    assert getattr(again, root) is not None


def test_a_written_pacs009_reads_back_as_the_same_transfers() -> None:
    transfers = _transfers(25)
    file = read_pacs009(write_pacs009("MSG-2", transfers, GENESIS, NOW), GENESIS,
                        payer="bank-a")
    assert [(t.end_to_end_id, t.uetr, t.payee, t.amount, t.priority) for t in file.transfers] == [
        (t.end_to_end_id, t.uetr, t.payee, t.amount, t.priority) for t in transfers]


def _mutate(old: str, new: str, nth: int = 1) -> bytes:
    """The 3-transfer file with the ``nth`` occurrence of ``old`` replaced by ``new``."""
    data = _file().decode()
    at = -1
    for _ in range(nth):
        at = data.index(old, at + 1)
    return (data[:at] + new + data[at + len(old):]).encode()


BAD_FILES = [
    # (what is wrong, the file, the line, the element path named, words of the reason)
    ("currency", lambda: _mutate('Ccy="SGD">1.01', 'Ccy="USD">1.01'), 37,
     "CdtTrfTxInf[2]/IntrBkSttlmAmt/@Ccy", "expected SGD"),
    ("decimals", lambda: _mutate(">1.02<", ">1.025<"), 55,
     "CdtTrfTxInf[3]/IntrBkSttlmAmt", "at most 2 decimals"),
    ("zero", lambda: _mutate(">1.01<", ">0.00<"), 37,
     "CdtTrfTxInf[2]/IntrBkSttlmAmt", "above zero"),
    ("unknown creditor", lambda: _mutate("BNKCSGX0", "BNKZSGX0"), 46,
     "CdtTrfTxInf[2]/Cdtr/FinInstnId/BICFI", "BNKZSGX0"),
    ("another debtor", lambda: _mutate("<BICFI>BNKASGX0", "<BICFI>BNKBSGX0", 3), 59,
     "CdtTrfTxInf[3]/Dbtr/FinInstnId/BICFI", "the sending bank bank-a"),
    ("count", lambda: _mutate("<NbOfTxs>3<", "<NbOfTxs>4<"), 7,
     "GrpHdr/NbOfTxs", "expected 3"),
    ("control sum", lambda: _mutate("<CtrlSum>3.03<", "<CtrlSum>3.04<"), 8,
     "GrpHdr/CtrlSum", "expected 3.03"),
    ("UETR twice", lambda: _mutate(str(uuid.UUID(int=2, version=4)),
                                   str(uuid.UUID(int=1, version=4))), 35,
     "CdtTrfTxInf[2]/PmtId/UETR", "used once"),
    ("UETR pattern", lambda: _mutate(str(uuid.UUID(int=3, version=4)), "not-a-uetr"), 53,
     "CdtTrfTxInf[3]/PmtId/UETR", "matching"),
    ("no UETR", lambda: _mutate(f"<UETR>{uuid.UUID(int=1, version=4)}</UETR>", ""), 15,
     "CdtTrfTxInf[1]/PmtId", "UETR"),
    ("long end-to-end id", lambda: _mutate("E2E-1<", "E" * 36 + "<"), 34,
     "CdtTrfTxInf[2]/PmtId/EndToEndId", "at most 35"),
    ("not a number", lambda: _mutate(">1.01<", ">1,01<"), 37,
     "IntrBkSttlmAmt", "Decimal"),
    ("unknown element", lambda: _mutate("<SttlmPrty>NORM", "<Fee>1</Fee><SttlmPrty>NORM"), 38,
     "Fee", "'Fee'"),
    ("missing element", lambda: _mutate("<EndToEndId>E2E-2</EndToEndId>", ""), 51,
     "PmtId", "end_to_end_id"),
    ("cut short", lambda: _file()[:-40], 67, "", "well-formed"),
    ("another message", lambda: _file().replace(b"pacs.009.001.08", b"pacs.008.001.08"), 2,
     "Document", "pacs.009.001.08"),
    ("entities", lambda: b'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY x SYSTEM '
     b'"file:///etc/passwd">]>\n' + _file().split(b"\n", 1)[1], 1, "", "DOCTYPE"),
]


@pytest.mark.parametrize(("what", "make", "line", "path", "reason"), BAD_FILES,
                         ids=[b[0] for b in BAD_FILES])
def test_a_bad_file_is_refused_whole_with_its_line_and_element(
    what: str, make, line: int, path: str, reason: str
) -> None:
    with pytest.raises(IsoFileError) as refused:
        read_pacs009(make(), GENESIS, payer="bank-a")
    error = refused.value
    assert error.line == line, f"{what}: {error}"
    assert error.path.endswith(path), f"{what}: {error}"
    assert reason in error.detail, f"{what}: {error}"
    assert f"line {line}" in str(error)


def test_the_status_report_gives_each_transfer_its_status_and_reason_code() -> None:
    file = read_pacs009(_file(4), GENESIS, payer="bank-a")
    outcomes = [
        Outcome("settled", transfer_id="ab" * 32),
        Outcome("queued", transfer_id="cd" * 32),
        Outcome("rejected", "insufficient_funds", "expected 1.00 available, got 0.50",
                "ef" * 32),
        Outcome("refused", "suspended", "bank-c is suspended"),
    ]
    report = read_pacs002(write_pacs002(file, outcomes, message_id="STS-1", created=NOW))

    group = report.orgnl_grp_inf_and_sts[0]
    assert (group.orgnl_msg_id, group.orgnl_msg_nm_id, group.grp_sts) == (
        "MSG-1", "pacs.009.001.08", "PART")
    assert {(n.dtld_sts, n.dtld_nb_of_txs) for n in group.nb_of_txs_per_sts} == {
        ("ACSC", "1"), ("ACSP", "1"), ("RJCT", "2")}
    rows = [(t.orgnl_end_to_end_id, t.orgnl_uetr, t.tx_sts,
             [r.rsn.cd for r in t.sts_rsn_inf], t.acct_svcr_ref) for t in report.tx_inf_and_sts]
    assert rows == [
        (f.end_to_end_id, f.uetr, status, codes, ref)
        for f, (status, codes, ref) in zip(file.transfers, [
            ("ACSC", [], "ab" * 16), ("ACSP", [], "cd" * 16), ("RJCT", ["AM04"], "ef" * 16),
            ("RJCT", ["AC06"], None)], strict=True)
    ]
    assert "insufficient_funds" in report.tx_inf_and_sts[2].sts_rsn_inf[0].addtl_inf[0]


def test_a_statement_balances_its_entries_and_says_where_each_came_from() -> None:
    uetr = str(uuid.UUID(int=9, version=4))
    entries = [
        Entry("11" * 32, True, "bank-b", "bank-a", 50_000, f"{uetr} INV-9",
              1_764_756_000_000, 7),
        Entry("22" * 32, False, "bank-a", "bank-c", 20_000, "salary", 1_764_752_400_000, 5),
    ]
    statement = read_camt053(write_camt053(
        GENESIS, "bank-a", dt.date(2025, 12, 3), opening=100_000, entries=entries,
        message_id="STMT-1", created=NOW)).stmt[0]

    balances = {b.tp.cd_or_prtry.cd: (b.amt.value, b.cdt_dbt_ind.value) for b in statement.bal}
    assert balances == {"OPBD": (Decimal("1000.00"), "CRDT"), "CLBD": (Decimal("1300.00"), "CRDT")}
    # Oldest first; incoming is a credit, outgoing a debit.
    assert [(e.cdt_dbt_ind.value, e.amt.value) for e in statement.ntry] == [
        ("DBIT", Decimal("200.00")), ("CRDT", Decimal("500.00"))]
    incoming = statement.ntry[1].ntry_dtls[0].tx_dtls[0]
    assert (incoming.refs.end_to_end_id, incoming.refs.uetr) == ("INV-9", uetr)
    assert incoming.rltd_agts.dbtr_agt.fin_instn_id.bicfi == "BNKBSGX0"
    assert statement.ntry[1].addtl_ntry_inf == "transfer " + "11" * 32
    assert statement.ntry[0].ntry_dtls[0].tx_dtls[0].refs.uetr is None
    assert statement.txs_summry.ttl_ntries.ttl_net_ntry.amt == Decimal("300.00")
    assert statement.acct.ccy == "SGD" and statement.acct.id.othr.id == "bank-a"
    assert statement.addtl_stmt_inf is None


def test_issuance_and_redemption_are_entries_with_their_own_codes_and_collateral() -> None:
    day_ms = 1_764_720_000_000  # 2025-12-03 00:00 UTC
    entries = [
        Entry("aa" * 32, True, "central-bank", "bank-a", 1_000_000, "bond-7 tranche 2",
              day_ms + 1_000, 2, kind=ISSUANCE),
        Entry("bb" * 32, False, "bank-a", "bank-b", 250_000, "", day_ms + 2_000, 3),
        Entry("cc" * 32, False, "bank-a", "central-bank", 300_000, "B" * 40, day_ms + 3_000,
              4, kind=REDEMPTION),
    ]
    statement = read_camt053(write_camt053(
        GENESIS, "bank-a", dt.date(2025, 12, 3), opening=0, entries=entries,
        message_id="STMT-3", created=NOW)).stmt[0]

    codes = [(e.bk_tx_cd.domn.cd, e.bk_tx_cd.domn.fmly.cd, e.bk_tx_cd.domn.fmly.sub_fmly_cd,
              e.bk_tx_cd.prtry.cd if e.bk_tx_cd.prtry else None) for e in statement.ntry]
    assert codes == [("PMNT", "MCOP", "OTHR", "ISSUANCE"), ("PMNT", "ICDT", "FICT", None),
                     ("PMNT", "MDOP", "OTHR", "REDEMPTION")]
    assert [(e.cdt_dbt_ind.value, e.amt.value, e.addtl_ntry_inf) for e in statement.ntry] == [
        ("CRDT", Decimal("10000.00"), "issuance " + "aa" * 32),
        ("DBIT", Decimal("2500.00"), "transfer " + "bb" * 32),
        ("DBIT", Decimal("3000.00"), "redemption " + "cc" * 32),
    ]
    issued = statement.ntry[0].ntry_dtls[0].tx_dtls[0]
    assert (issued.refs.end_to_end_id, issued.refs.uetr, issued.addtl_tx_inf) == (
        "bond-7 tranche 2", None, "collateral bond-7 tranche 2")
    assert issued.rltd_agts.dbtr_agt.fin_instn_id.bicfi == "CBNKSGX0"
    redeemed = statement.ntry[2].ntry_dtls[0].tx_dtls[0]
    # A collateral reference longer than Max35Text is cut in Refs and whole in AddtlTxInf.
    assert (redeemed.refs.end_to_end_id, redeemed.addtl_tx_inf) == (
        "B" * 35, "collateral " + "B" * 40)
    assert redeemed.rltd_agts.cdtr_agt.fin_instn_id.bicfi == "CBNKSGX0"
    balances = {b.tp.cd_or_prtry.cd: (b.amt.value, b.cdt_dbt_ind.value) for b in statement.bal}
    assert balances == {"OPBD": (Decimal("0.00"), "CRDT"), "CLBD": (Decimal("4500.00"), "CRDT")}
    summary = statement.txs_summry
    assert (summary.ttl_cdt_ntries.nb_of_ntries, summary.ttl_cdt_ntries.sum) == (
        "1", Decimal("10000.00"))
    assert (summary.ttl_dbt_ntries.nb_of_ntries, summary.ttl_dbt_ntries.sum) == (
        "2", Decimal("5500.00"))


def test_every_message_we_write_holds_to_the_schema_facets() -> None:
    file = read_pacs009(_file(5), GENESIS, payer="bank-a")
    written = [
        write_pacs009("MSG-3", _transfers(5), GENESIS, NOW),
        write_pacs002(file, [Outcome("expired", transfer_id="00" * 32)] * 5,
                      message_id="STS-2", created=NOW),
        write_camt053(GENESIS, "bank-b", dt.date(2026, 12, 3), opening=-5, entries=[],
                      message_id="STMT-2", created=NOW),
    ]
    parsed = [read_pacs009(written[0], GENESIS, payer="bank-a"), read_pacs002(written[1]),
              read_camt053(written[2])]
    assert len(parsed[0].transfers) == 5
    assert [t.sts_rsn_inf[0].rsn.cd for t in parsed[1].tx_inf_and_sts] == ["AB01"] * 5
    assert parsed[2].stmt[0].bal[0].cdt_dbt_ind.value == "DBIT"  # a negative balance


def test_the_schema_check_catches_what_the_schema_forbids() -> None:
    too_long = pacs002.StatusReasonInformation12(addtl_inf=["x" * 106])
    assert [p for p, _ in schema_errors(too_long, "StsRsnInf")] == ["StsRsnInf/AddtlInf[1]"]
    missing = pacs009.ActiveCurrencyAndAmount(value=Decimal("1.123456"), ccy="sgd")
    reasons = dict(schema_errors(missing, "Amt"))
    assert "at most 5 decimals" in reasons["Amt"] and "matching" in reasons["Amt/@Ccy"]
    with pytest.raises(IsoFileError, match="refusing to write"):
        render(pacs002.Document(fito_fipmt_sts_rpt=pacs002.FitoFipaymentStatusReportV10(
            grp_hdr=pacs002.GroupHeader91(msg_id="M" * 36, cre_dt_tm=None))),
            "urn:iso:std:iso:20022:tech:xsd:pacs.002.001.10")
