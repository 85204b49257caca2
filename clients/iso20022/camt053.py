"""camt.053.001.08 (BankToCustomerStatement): a bank's settlement account for one day.

The day is a UTC calendar day; an entry belongs to it when its block's timestamp
(``settled_time_ms``) falls in it. The statement carries:

- the account: ``Acct/Id/Othr/Id`` is the participant id, ``Ccy`` the network's
  currency, ``Ownr`` and ``Svcr`` by BIC (the bank, and the central bank);
- ``Bal``: OPBD (opening booked) and CLBD (closing booked);
- ``TxsSummry``: number and sum of entries, credits and debits, and the net;
- one ``Ntry`` per settled transfer, issuance and redemption, oldest first: amount,
  CRDT (incoming, issued) or DBIT (outgoing, redeemed), status BOOK, booking
  date-time, value date, the bank transaction code, the transaction id (its first 32
  hex digits) as ``AcctSvcrRef`` and whole in ``AddtlNtryInf``, and the payer's and
  payee's BICs as debtor and creditor agents. A transfer is PMNT / RCDT or ICDT /
  FICT with its end-to-end id and UETR in ``Refs``; an issuance PMNT / MCOP / OTHR
  and a redemption PMNT / MDOP / OTHR, each with a proprietary code that names it,
  and the collateral reference as end-to-end id (whole in ``AddtlTxInf``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from pyiso20022.camt import camt_053_001_08 as camt053
from xsdata.models.datatype import XmlDate, XmlDateTime

from clients.iso20022.document import read, render
from clients.iso20022.pacs009 import split_reference, to_decimal
from ledger.genesis import Genesis, ParticipantSpec

VERSION = "camt.053.001.08"
NAMESPACE = f"urn:iso:std:iso:20022:tech:xsd:{VERSION}"
_REFERENCE_LENGTH = 32
_ID_LENGTH = 35
TRANSFER, ISSUANCE, REDEMPTION = "transfer", "issuance", "redemption"
# Issuance and redemption create and destroy money on the account: no other account
# is debited or credited, so neither is a credit transfer. The external code set has
# no sub-family for a central bank's issuance against collateral; the Payments
# domain's miscellaneous credit and debit operations with OTHR say what kind of
# booking it is, and the proprietary code says which one.
_CODES = {
    ISSUANCE: ("MCOP", "OTHR"),
    REDEMPTION: ("MDOP", "OTHR"),
}
PROPRIETARY_ISSUER = "STRAITS"
_PROPRIETARY = {ISSUANCE: "ISSUANCE", REDEMPTION: "REDEMPTION"}


@dataclass(frozen=True)
class Entry:
    """One booking on the account: positive ``amount`` in minor units.

    ``kind``: a transfer between banks, or the central bank's issuance to the account
    (``incoming``, payer the central bank) or the bank's redemption (payee the central
    bank); ``transfer_id`` is the ledger transaction's id and, for those two,
    ``reference`` its collateral reference."""

    transfer_id: str  # hex
    incoming: bool
    payer: str
    payee: str
    amount: int
    reference: str
    settled_time_ms: int
    settled_height: int
    kind: str = TRANSFER

    @property
    def signed(self) -> int:
        return self.amount if self.incoming else -self.amount


def day_bounds_ms(day: dt.date) -> tuple[int, int]:
    """[start, end) of a UTC day in milliseconds since the epoch."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return int(start.timestamp() * 1000), int((start + dt.timedelta(days=1)).timestamp() * 1000)


def _time(ms: int) -> XmlDateTime:
    return XmlDateTime.from_datetime(dt.datetime.fromtimestamp(ms / 1000, dt.UTC))


def _agent(participant: ParticipantSpec | None,
           fallback: str) -> camt053.BranchAndFinancialInstitutionIdentification6:
    if participant is not None and participant.bic:
        identification = camt053.FinancialInstitutionIdentification18(bicfi=participant.bic)
    else:
        identification = camt053.FinancialInstitutionIdentification18(nm=fallback)
    return camt053.BranchAndFinancialInstitutionIdentification6(fin_instn_id=identification)


def _amount(minor: int, genesis: Genesis) -> camt053.ActiveOrHistoricCurrencyAndAmount:
    return camt053.ActiveOrHistoricCurrencyAndAmount(value=to_decimal(abs(minor), genesis),
                                                     ccy=genesis.currency.code)


def _side(minor: int) -> camt053.CreditDebitCode:
    return camt053.CreditDebitCode.DBIT if minor < 0 else camt053.CreditDebitCode.CRDT


def _balance(code: str, minor: int, day: dt.date, genesis: Genesis) -> camt053.CashBalance8:
    return camt053.CashBalance8(
        tp=camt053.BalanceType13(cd_or_prtry=camt053.BalanceType10Choice(cd=code)),
        amt=_amount(minor, genesis),
        cdt_dbt_ind=_side(minor),
        dt=camt053.DateAndDateTime2Choice(dt=XmlDate.from_date(day)),
    )


def _code(entry: Entry) -> camt053.BankTransactionCodeStructure4:
    if entry.kind == TRANSFER:
        family, sub_family = ("RCDT" if entry.incoming else "ICDT"), "FICT"
    else:
        family, sub_family = _CODES[entry.kind]
    proprietary = _PROPRIETARY.get(entry.kind)
    return camt053.BankTransactionCodeStructure4(
        domn=camt053.BankTransactionCodeStructure5(
            cd="PMNT",
            fmly=camt053.BankTransactionCodeStructure6(cd=family, sub_fmly_cd=sub_family),
        ),
        prtry=camt053.ProprietaryBankTransactionCodeStructure1(
            cd=proprietary, issr=PROPRIETARY_ISSUER) if proprietary else None,
    )


def _entry(entry: Entry, genesis: Genesis) -> camt053.ReportEntry10:
    by_id = {p.id: p for p in genesis.participants}
    if entry.kind == TRANSFER:
        end_to_end, uetr = split_reference(entry.reference)
        more = None
    else:
        # The collateral reference is how the central bank and the bank both name it.
        end_to_end, uetr = entry.reference, ""
        more = f"collateral {entry.reference}" if entry.reference else None
    side = camt053.CreditDebitCode.CRDT if entry.incoming else camt053.CreditDebitCode.DBIT
    code = _code(entry)
    reference = entry.transfer_id[:_REFERENCE_LENGTH]
    details = camt053.EntryTransaction10(
        refs=camt053.TransactionReferences6(
            acct_svcr_ref=reference,
            end_to_end_id=end_to_end[:_ID_LENGTH] or None,
            uetr=uetr or None,
        ),
        amt=_amount(entry.amount, genesis),
        cdt_dbt_ind=side,
        rltd_agts=camt053.TransactionAgents5(
            dbtr_agt=_agent(by_id.get(entry.payer), entry.payer),
            cdtr_agt=_agent(by_id.get(entry.payee), entry.payee),
        ),
        addtl_tx_inf=more,
    )
    return camt053.ReportEntry10(
        ntry_ref=str(entry.settled_height),
        amt=_amount(entry.amount, genesis),
        cdt_dbt_ind=side,
        sts=camt053.EntryStatus1Choice(cd="BOOK"),
        bookg_dt=camt053.DateAndDateTime2Choice(dt_tm=_time(entry.settled_time_ms)),
        val_dt=camt053.DateAndDateTime2Choice(
            dt=XmlDate.from_date(dt.datetime.fromtimestamp(entry.settled_time_ms / 1000,
                                                           dt.UTC).date())),
        acct_svcr_ref=reference,
        bk_tx_cd=code,
        ntry_dtls=[camt053.EntryDetails9(tx_dtls=[details])],
        addtl_ntry_inf=f"{entry.kind} {entry.transfer_id}",
    )


def _totals(entries: Sequence[Entry], genesis: Genesis) -> camt053.TotalTransactions6:
    def count(selected: Sequence[Entry]) -> camt053.NumberAndSumOfTransactions1:
        return camt053.NumberAndSumOfTransactions1(
            nb_of_ntries=str(len(selected)),
            sum=to_decimal(sum(e.amount for e in selected), genesis))

    net = sum(e.signed for e in entries)
    return camt053.TotalTransactions6(
        ttl_ntries=camt053.NumberAndSumOfTransactions4(
            nb_of_ntries=str(len(entries)),
            sum=to_decimal(sum(e.amount for e in entries), genesis),
            ttl_net_ntry=camt053.AmountAndDirection35(amt=to_decimal(abs(net), genesis),
                                                      cdt_dbt_ind=_side(net)),
        ),
        ttl_cdt_ntries=count([e for e in entries if e.incoming]),
        ttl_dbt_ntries=count([e for e in entries if not e.incoming]),
    )


def write_camt053(genesis: Genesis, account: str, day: dt.date, *, opening: int,
                  entries: Sequence[Entry], message_id: str, created: dt.datetime) -> bytes:
    """The statement of ``account`` for ``day``; the closing balance is the opening one
    plus the entries, so the two always agree."""
    owner = next((p for p in genesis.participants if p.id == account), None)
    ordered = sorted(entries, key=lambda e: (e.settled_height, e.settled_time_ms,
                                             e.transfer_id))
    closing = opening + sum(e.signed for e in ordered)
    start, end = day_bounds_ms(day)
    statement = camt053.AccountStatement9(
        id=f"{account}-{day.isoformat()}"[:_ID_LENGTH],
        elctrnc_seq_nb=Decimal(day.toordinal()),
        cre_dt_tm=XmlDateTime.from_datetime(created),
        fr_to_dt=camt053.DateTimePeriod1(fr_dt_tm=_time(start), to_dt_tm=_time(end - 1)),
        acct=camt053.CashAccount39(
            id=camt053.AccountIdentification4Choice(
                othr=camt053.GenericAccountIdentification1(id=account)),
            ccy=genesis.currency.code,
            nm=owner.name if owner is not None else account,
            svcr=_agent(genesis.central_bank, genesis.central_bank.id),
        ),
        bal=[_balance("OPBD", opening, day, genesis), _balance("CLBD", closing, day, genesis)],
        txs_summry=_totals(ordered, genesis),
        ntry=[_entry(e, genesis) for e in ordered],
    )
    document = camt053.Document(bk_to_cstmr_stmt=camt053.BankToCustomerStatementV08(
        grp_hdr=camt053.GroupHeader81(msg_id=message_id,
                                      cre_dt_tm=XmlDateTime.from_datetime(created)),
        stmt=[statement],
    ))
    return render(document, NAMESPACE)


def read_camt053(data: bytes) -> camt053.BankToCustomerStatementV08:
    """A camt.053 statement as the library's message object, held to the schema's rules."""
    return read(data, camt053.Document, NAMESPACE, VERSION).message.bk_to_cstmr_stmt
