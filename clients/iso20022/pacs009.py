"""pacs.009.001.08 (FinancialInstitutionCreditTransfer) in and out.

``read_pacs009`` turns a file into transfers of the sending bank, or refuses the
whole file with the first fault's line and element path: malformed XML, anything
the schema forbids, a currency other than the network's, more decimals than it
has, a BIC no participant holds, a debtor other than the sending bank, counts and
control sums that do not add up, a UETR used twice. Nothing is sent before the
whole file has passed.

How a transfer maps to Straits:

- ``Dbtr`` is the payer and must be the sending bank; ``Cdtr`` is the payee. Both are
  found by ``FinInstnId/BICFI`` among the participants' BICs in genesis. Agents
  (``DbtrAgt``, ``CdtrAgt``, ``InstgAgt``, ``InstdAgt``), when given, must be
  participants too.
- ``IntrBkSttlmAmt`` in the network's currency becomes minor units.
- ``SttlmPrty`` (or ``PmtTpInf/InstrPrty``) ``URGT`` or ``HIGH`` makes it urgent.
- The reference is ``"<UETR> <EndToEndId>"``, so statements and status reports give
  both back; the request id is ``uetr-<UETR>``, so sending a file again never pays a
  transfer twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from pyiso20022.pacs import pacs_009_001_08 as pacs009
from straits.ledger.v1 import transaction_pb2 as tx_pb
from xsdata.models.datatype import XmlDateTime

from clients.iso20022.document import IsoFileError, Located, read, render
from ledger.genesis import Genesis, ParticipantSpec
from ledger.transaction import INT64_MAX

VERSION = "pacs.009.001.08"
NAMESPACE = f"urn:iso:std:iso:20022:tech:xsd:{VERSION}"
_URGENT = {"URGT", "HIGH"}
_UETR_LENGTH = 36


@dataclass(frozen=True)
class FileTransfer:
    """One credit transfer of a pacs.009 file, mapped to the network's terms."""

    line: int
    end_to_end_id: str
    uetr: str
    payer: str
    payee: str
    amount: int  # minor units
    priority: int = tx_pb.PRIORITY_NORMAL

    @property
    def reference(self) -> str:
        return f"{self.uetr} {self.end_to_end_id}"

    @property
    def request_id(self) -> str:
        return f"uetr-{self.uetr}"


@dataclass(frozen=True)
class TransferFile:
    message_id: str
    created: str
    transfers: tuple[FileTransfer, ...]


def split_reference(reference: str) -> tuple[str, str]:
    """(end-to-end id, UETR) of a reference written by ``FileTransfer``; a reference of
    another origin is its own end-to-end id, with no UETR."""
    uetr, space, end_to_end = reference.partition(" ")
    if space and len(uetr) == _UETR_LENGTH and uetr.count("-") == 4:
        return end_to_end, uetr
    return reference, ""


def to_minor(value: Decimal, genesis: Genesis) -> int | None:
    """Minor units of ``value``, or None when it has more decimals than the currency."""
    minor = value * 10**genesis.currency.decimals
    return int(minor) if minor == minor.to_integral_value() else None


def to_decimal(minor: int, genesis: Genesis) -> Decimal:
    return Decimal(minor).scaleb(-genesis.currency.decimals)


class _Checker:
    def __init__(self, located: Located, genesis: Genesis) -> None:
        self.located = located
        self.genesis = genesis

    def fail(self, path: str, detail: str) -> IsoFileError:
        return IsoFileError(detail, line=self.located.line(path), path=path)

    def party(self, agent: pacs009.BranchAndFinancialInstitutionIdentification6,
              path: str) -> ParticipantSpec:
        found = self.participant(agent, path)
        if found is None:
            raise self.fail(path, "expected FinInstnId/BICFI naming a participant, got none")
        return found

    def participant(self, agent: pacs009.BranchAndFinancialInstitutionIdentification6 | None,
                    path: str) -> ParticipantSpec | None:
        bic = agent.fin_instn_id.bicfi if agent is not None else None
        if bic is None:
            return None
        found = self.genesis.participant_by_bic(bic)
        if found is None:
            raise self.fail(f"{path}/FinInstnId/BICFI",
                            f"expected the BIC of a participant of this network, got {bic!r}")
        return found

    def amount(self, amount: pacs009.ActiveCurrencyAndAmount, path: str) -> int:
        currency = self.genesis.currency
        if amount.ccy != currency.code:
            raise self.fail(f"{path}/@Ccy",
                            f"expected {currency.code}, the network's currency, got {amount.ccy!r}")
        minor = to_minor(amount.value, self.genesis)
        if minor is None:
            raise self.fail(path, f"expected at most {currency.decimals} decimals for "
                                  f"{currency.code}, got {amount.value}")
        if not 0 < minor <= INT64_MAX:
            raise self.fail(path, f"expected an amount above zero and at most "
                                  f"{to_decimal(INT64_MAX, self.genesis)}, got {amount.value}")
        return minor


def read_pacs009(data: bytes, genesis: Genesis, *, payer: str) -> TransferFile:
    """The transfers of a pacs.009 file sent by ``payer``; ``IsoFileError`` refuses it."""
    located = read(data, pacs009.Document, NAMESPACE, VERSION)
    check = _Checker(located, genesis)
    message: pacs009.FinancialInstitutionCreditTransferV08 = located.message.ficdt_trf
    header = message.grp_hdr
    base = "Document/FICdtTrf"
    for name in ("instg_agt", "instd_agt"):
        check.participant(getattr(header, name), f"{base}/GrpHdr/{_tag(name)}")

    transfers: list[FileTransfer] = []
    uetrs: dict[str, int] = {}
    for i, tx in enumerate(message.cdt_trf_tx_inf, start=1):
        path = f"{base}/CdtTrfTxInf[{i}]"
        line = located.line(path)
        uetr = tx.pmt_id.uetr
        if uetr is None:
            raise check.fail(f"{path}/PmtId", "expected PmtId/UETR, got none")
        if uetr in uetrs:
            raise check.fail(f"{path}/PmtId/UETR",
                             f"expected a UETR used once, got {uetr} again (first on line "
                             f"{uetrs[uetr]})")
        uetrs[uetr] = line
        debtor = check.party(tx.dbtr, f"{path}/Dbtr")
        creditor = check.party(tx.cdtr, f"{path}/Cdtr")
        if debtor.id != payer:
            raise check.fail(f"{path}/Dbtr/FinInstnId/BICFI",
                             f"expected the sending bank {payer} as debtor, got {debtor.bic} "
                             f"({debtor.id})")
        for name in ("dbtr_agt", "cdtr_agt", "instg_agt", "instd_agt"):
            check.participant(getattr(tx, name), f"{path}/{_tag(name)}")
        transfers.append(FileTransfer(
            line=line,
            end_to_end_id=tx.pmt_id.end_to_end_id,
            uetr=uetr,
            payer=debtor.id,
            payee=creditor.id,
            amount=check.amount(tx.intr_bk_sttlm_amt, f"{path}/IntrBkSttlmAmt"),
            priority=_priority(tx),
        ))

    _check_totals(check, header, transfers, f"{base}/GrpHdr")
    return TransferFile(header.msg_id, header.cre_dt_tm.to_datetime().isoformat(),
                        tuple(transfers))


def _check_totals(check: _Checker, header: pacs009.GroupHeader93,
                  transfers: Sequence[FileTransfer], path: str) -> None:
    if int(header.nb_of_txs) != len(transfers):
        raise check.fail(f"{path}/NbOfTxs",
                         f"expected {len(transfers)}, the number of CdtTrfTxInf, "
                         f"got {header.nb_of_txs}")
    total = to_decimal(sum(t.amount for t in transfers), check.genesis)
    if header.ctrl_sum is not None and header.ctrl_sum != total:
        raise check.fail(f"{path}/CtrlSum",
                         f"expected {total}, the sum of the amounts, got {header.ctrl_sum}")
    if header.ttl_intr_bk_sttlm_amt is not None:
        stated = check.amount(header.ttl_intr_bk_sttlm_amt, f"{path}/TtlIntrBkSttlmAmt")
        if to_decimal(stated, check.genesis) != total:
            raise check.fail(f"{path}/TtlIntrBkSttlmAmt",
                             f"expected {total}, the sum of the amounts, "
                             f"got {header.ttl_intr_bk_sttlm_amt.value}")


def _priority(tx: pacs009.CreditTransferTransaction36) -> int:
    settlement = tx.sttlm_prty.value if tx.sttlm_prty is not None else ""
    instruction = (tx.pmt_tp_inf.instr_prty.value
                   if tx.pmt_tp_inf is not None and tx.pmt_tp_inf.instr_prty is not None else "")
    urgent = settlement in _URGENT or instruction in _URGENT
    return tx_pb.PRIORITY_URGENT if urgent else tx_pb.PRIORITY_NORMAL


def _tag(attribute: str) -> str:
    return {"instg_agt": "InstgAgt", "instd_agt": "InstdAgt", "dbtr_agt": "DbtrAgt",
            "cdtr_agt": "CdtrAgt"}[attribute]


def agent(participant: ParticipantSpec) -> pacs009.BranchAndFinancialInstitutionIdentification6:
    return pacs009.BranchAndFinancialInstitutionIdentification6(
        fin_instn_id=pacs009.FinancialInstitutionIdentification18(bicfi=participant.bic))


def write_pacs009(message_id: str, transfers: Sequence[FileTransfer], genesis: Genesis,
                  created: dt.datetime) -> bytes:
    """A pacs.009 file of ``transfers`` (their ``line`` is ignored): what a bank's payment
    system would send, for tests, tools and programs that build files."""
    by_id = {p.id: p for p in genesis.participants}
    code = genesis.currency.code
    total = to_decimal(sum(t.amount for t in transfers), genesis)
    document = pacs009.Document(ficdt_trf=pacs009.FinancialInstitutionCreditTransferV08(
        grp_hdr=pacs009.GroupHeader93(
            msg_id=message_id,
            cre_dt_tm=XmlDateTime.from_datetime(created),
            nb_of_txs=str(len(transfers)),
            ctrl_sum=total,
            ttl_intr_bk_sttlm_amt=pacs009.ActiveCurrencyAndAmount(value=total, ccy=code),
            sttlm_inf=pacs009.SettlementInstruction7(
                sttlm_mtd=pacs009.SettlementMethod1Code.CLRG),
        ),
        cdt_trf_tx_inf=[
            pacs009.CreditTransferTransaction36(
                pmt_id=pacs009.PaymentIdentification7(
                    end_to_end_id=t.end_to_end_id, uetr=t.uetr),
                intr_bk_sttlm_amt=pacs009.ActiveCurrencyAndAmount(
                    value=to_decimal(t.amount, genesis), ccy=code),
                sttlm_prty=(pacs009.Priority3Code.URGT if t.priority == tx_pb.PRIORITY_URGENT
                            else pacs009.Priority3Code.NORM),
                dbtr=agent(by_id[t.payer]),
                cdtr=agent(by_id[t.payee]),
            )
            for t in transfers
        ],
    ))
    return render(document, NAMESPACE)
