"""``IsoBank``: a bank's ISO 20022 exchange with its own node, over ``BankClient``.

    iso = IsoBank(BankClient(channel), genesis.load("genesis.json"))
    sent = iso.send_pacs009(Path("payments.xml").read_bytes())   # refuses a bad file whole
    Path("status.xml").write_bytes(sent.report)                  # pacs.002
    Path("day.xml").write_bytes(iso.statement(date(2026, 12, 3)))  # camt.053

The genesis gives the currency, its decimals and every participant's BIC; the bank
learns its own id from its node. A statement's entries are the bank's history of
every kind (transfers, the central bank's issuances to it, its redemptions), which
is every change of its balance; the balances are worked back from the balance now,
read at a validator's height once the node has followed that height: the closing
balance is that balance less every entry settled after the day, the opening one the
closing less the day's entries.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice

import grpc
from straits.bank.v1 import bank_pb2 as pb

from clients.iso20022.camt053 import (
    ISSUANCE,
    REDEMPTION,
    TRANSFER,
    Entry,
    day_bounds_ms,
    write_camt053,
)
from clients.iso20022.pacs002 import Outcome, write_pacs002
from clients.iso20022.pacs009 import FileTransfer, TransferFile, read_pacs009
from clients.sdk.bank import ALL_KINDS, BankClient, Instruction
from clients.sdk.channel import ApiError
from ledger.genesis import Genesis

BATCH = 1000
_ID_LENGTH = 35
# How long a statement waits for the bank's node to follow the height its balance was
# read at (validators may commit a block a moment before the node has followed it).
FOLLOW_WAIT_S = 10.0
_FOLLOW_POLL_S = 0.05
_KINDS = {
    pb.PAYMENT_KIND_ISSUANCE: ISSUANCE,
    pb.PAYMENT_KIND_REDEMPTION: REDEMPTION,
}


@dataclass(frozen=True)
class SentFile:
    file: TransferFile
    payments: tuple[pb.Payment | None, ...]  # None where the node refused the transfer
    outcomes: tuple[Outcome, ...]
    report: bytes  # pacs.002

    @property
    def refused(self) -> int:
        return sum(o.tx_status == "RJCT" for o in self.outcomes)


def outcome_of(payment: pb.Payment) -> Outcome:
    status = pb.PaymentStatus.Name(payment.status).removeprefix("PAYMENT_STATUS_").lower()
    return Outcome(status, payment.reason, payment.detail, payment.transfer_id.hex())


def _message_id(prefix: str, now: dt.datetime) -> str:
    return f"{prefix}-{now:%Y%m%d%H%M%S%f}"[:_ID_LENGTH]


class IsoBank:
    def __init__(self, bank: BankClient, genesis: Genesis) -> None:
        self.bank = bank
        self.genesis = genesis
        self._me = ""

    @property
    def participant(self) -> str:
        if not self._me:
            self._me = self.bank.balance().id
        return self._me

    def read_pacs009(self, data: bytes) -> TransferFile:
        """The file's transfers, checked whole; ``IsoFileError`` says where it is wrong."""
        return read_pacs009(data, self.genesis, payer=self.participant)

    def send_pacs009(self, data: bytes, *, wait: bool = True) -> SentFile:
        """Checks the whole file, then sends its transfers in batches; sending the same
        file again pays nothing twice (each transfer's request id is its UETR)."""
        file = self.read_pacs009(data)
        payments: list[pb.Payment | None] = []
        outcomes: list[Outcome] = []
        transfers = iter(file.transfers)
        while chunk := list(islice(transfers, BATCH)):
            for result in self.bank.send_many(_instructions(chunk), wait=wait):
                if result.WhichOneof("result") == "payment":
                    payments.append(result.payment)
                    outcomes.append(outcome_of(result.payment))
                else:
                    payments.append(None)
                    outcomes.append(Outcome("refused", result.error.reason, result.error.detail))
        return SentFile(file, tuple(payments), tuple(outcomes), self._report(file, outcomes))

    def status_report(self, data: bytes) -> bytes:
        """A fresh pacs.002 for a file sent before: each transfer as it stands now."""
        file = self.read_pacs009(data)
        outcomes = []
        for transfer in file.transfers:
            try:
                outcomes.append(outcome_of(self.bank.payment(request_id=transfer.request_id)))
            except ApiError as error:
                if error.code.name != "NOT_FOUND":
                    raise
                outcomes.append(Outcome("refused", "not_found", "never accepted by the node"))
        return self._report(file, outcomes)

    def _report(self, file: TransferFile, outcomes: list[Outcome]) -> bytes:
        now = dt.datetime.now(dt.UTC)
        return write_pacs002(file, outcomes, message_id=_message_id(self.participant, now),
                             created=now)

    def entries(self, day: dt.date) -> tuple[int, list[Entry]]:
        """(opening balance, the day's bookings), from the balance and history."""
        account, height = self.bank.balance_at()
        self._await_followed(height)
        start, end = day_bounds_ms(day)
        settled = [
            _entry(p) for p in self.bank.history(statuses=[pb.PAYMENT_STATUS_SETTLED],
                                                 page_size=1000, kinds=ALL_KINDS)
            if p.settled_height <= height
        ]
        later = sum(e.signed for e in settled if e.settled_time_ms >= end)
        day_entries = [e for e in settled if start <= e.settled_time_ms < end]
        closing = account.balance - later
        return closing - sum(e.signed for e in day_entries), day_entries

    def _await_followed(self, height: int) -> None:
        """Returns once the node's history holds every block up to ``height``."""
        deadline = time.monotonic() + FOLLOW_WAIT_S
        followed = self.bank.followed_height()
        while followed < height:
            if time.monotonic() > deadline:
                raise ApiError(
                    grpc.StatusCode.DEADLINE_EXCEEDED, "unavailable", "",
                    f"expected the bank node to have followed block {height}, where the "
                    f"balance was read, got block {followed} after {FOLLOW_WAIT_S:g} s")
            time.sleep(_FOLLOW_POLL_S)
            followed = self.bank.followed_height()

    def statement(self, day: dt.date) -> bytes:
        """camt.053 of this bank's account for the UTC day ``day``."""
        opening, day_entries = self.entries(day)
        now = dt.datetime.now(dt.UTC)
        return write_camt053(self.genesis, self.participant, day, opening=opening,
                             entries=day_entries, message_id=_message_id("STMT", now),
                             created=now)


def _instructions(transfers: Iterable[FileTransfer]) -> list[Instruction]:
    return [Instruction(t.payee, t.amount, t.priority, t.reference, request_id=t.request_id)
            for t in transfers]


def _entry(payment: pb.Payment) -> Entry:
    return Entry(
        transfer_id=payment.transfer_id.hex(),
        incoming=payment.direction == pb.DIRECTION_INCOMING,
        payer=payment.payer,
        payee=payment.payee,
        amount=payment.amount,
        reference=payment.reference,
        settled_time_ms=payment.settled_time_ms,
        settled_height=payment.settled_height,
        kind=_KINDS.get(payment.kind, TRANSFER),
    )
