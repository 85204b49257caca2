"""pacs.002.001.10 (FIToFIPaymentStatusReport) for a pacs.009 file sent to Straits.

One ``TxInfAndSts`` per credit transfer of the file, in file order, with its
original end-to-end id and UETR, and one group status:

| Straits status | TxSts | meaning |
|---|---|---|
| settled | ACSC | accepted, settlement completed: final |
| queued | ACSP | accepted, settlement in process: waits in the payer's queue |
| pending | ACTC | accepted by the validators, not yet in a block (``--no-wait``) |
| rejected, cancelled, expired, refused | RJCT | with a reason code, see ``REASONS`` |

The group status is ACSC when every transfer settled, RJCT when every one was
refused, PART when some were, ACSP otherwise.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from pyiso20022.pacs import pacs_002_001_10 as pacs002
from xsdata.models.datatype import XmlDateTime

from clients.iso20022 import pacs009
from clients.iso20022.document import Located, read, render
from clients.iso20022.pacs009 import TransferFile

VERSION = "pacs.002.001.10"
NAMESPACE = f"urn:iso:std:iso:20022:tech:xsd:{VERSION}"
TX_STATUS = {"settled": "ACSC", "queued": "ACSP", "pending": "ACTC"}
REJECTED = "RJCT"
# Straits reasons as ISO external status reason codes (ExternalStatusReason1Code).
REASONS = {
    "insufficient_funds": "AM04",
    "invalid_amount": "AM12",
    "overflow": "AM12",
    "already_exists": "AM05",
    "duplicate_request": "AM05",
    "unknown_account": "AC01",
    "suspended": "AC06",
    "not_permitted": "AG01",
    "cancelled": "CUST",
    "expired": "AB01",
}
NARRATIVE = "NARR"
_INFO_LENGTH = 105
_REFERENCE_LENGTH = 32


@dataclass(frozen=True)
class Outcome:
    """Where one transfer of a file stands: a payment status, or refused before the ledger."""

    status: str  # settled, queued, pending, rejected, cancelled, expired or refused
    reason: str = ""
    detail: str = ""
    transfer_id: str = ""  # hex, empty when refused before signing

    @property
    def tx_status(self) -> str:
        return TX_STATUS.get(self.status, REJECTED)

    @property
    def reason_code(self) -> str:
        return REASONS.get(self.reason or self.status, NARRATIVE)


def group_status(outcomes: Sequence[Outcome]) -> str:
    statuses = {o.tx_status for o in outcomes}
    if statuses == {"ACSC"}:
        return "ACSC"
    if statuses == {REJECTED}:
        return REJECTED
    return "PART" if REJECTED in statuses else "ACSP"


def _reason(outcome: Outcome) -> list[pacs002.StatusReasonInformation12]:
    if outcome.tx_status != REJECTED:
        return []
    info = f"{outcome.reason or outcome.status}: {outcome.detail}".rstrip(": ")
    return [pacs002.StatusReasonInformation12(
        rsn=pacs002.StatusReason6Choice(cd=outcome.reason_code),
        addtl_inf=[info[:_INFO_LENGTH]],
    )]


def write_pacs002(file: TransferFile, outcomes: Sequence[Outcome], *, message_id: str,
                  created: dt.datetime) -> bytes:
    """The status report of ``file``; ``outcomes`` are its transfers', in file order."""
    if len(outcomes) != len(file.transfers):
        raise ValueError(f"expected {len(file.transfers)} outcomes, got {len(outcomes)}")
    per_status = Counter(o.tx_status for o in outcomes)
    original = pacs002.OriginalGroupHeader17(
        orgnl_msg_id=file.message_id,
        orgnl_msg_nm_id=pacs009.VERSION,
        orgnl_cre_dt_tm=XmlDateTime.from_string(file.created),
        orgnl_nb_of_txs=str(len(file.transfers)),
        grp_sts=group_status(outcomes),
        nb_of_txs_per_sts=[
            pacs002.NumberOfTransactionsPerStatus5(dtld_nb_of_txs=str(n), dtld_sts=status)
            for status, n in sorted(per_status.items())
        ],
    )
    transactions = [
        pacs002.PaymentTransaction110(
            sts_id=f"{message_id[:24]}-{i}"[:35],
            orgnl_end_to_end_id=transfer.end_to_end_id,
            orgnl_uetr=transfer.uetr,
            tx_sts=outcome.tx_status,
            sts_rsn_inf=_reason(outcome),
            acct_svcr_ref=outcome.transfer_id[:_REFERENCE_LENGTH] or None,
        )
        for i, (transfer, outcome) in enumerate(zip(file.transfers, outcomes, strict=True),
                                                start=1)
    ]
    document = pacs002.Document(fito_fipmt_sts_rpt=pacs002.FitoFipaymentStatusReportV10(
        grp_hdr=pacs002.GroupHeader91(msg_id=message_id,
                                      cre_dt_tm=XmlDateTime.from_datetime(created)),
        orgnl_grp_inf_and_sts=[original],
        tx_inf_and_sts=transactions,
    ))
    return render(document, NAMESPACE)


def read_pacs002(data: bytes) -> pacs002.FitoFipaymentStatusReportV10:
    """A pacs.002 report as the library's message object, held to the schema's rules."""
    located: Located = read(data, pacs002.Document, NAMESPACE, VERSION)
    return located.message.fito_fipmt_sts_rpt
