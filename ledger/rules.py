"""Business rules: what each admitted transaction does to the working state.

``apply(working, transaction)`` returns the outcome (SETTLED, QUEUED or APPLIED). A rule
that refuses raises its ``RejectedError`` (the specific class, the field to blame and
the detail) before it writes anything, so the caller hands that error on as it is (a
REJECTED receipt via ``rejected``, a refusal at admission) and the state is exactly as
before (only the id is consumed, by the caller).

Who may do what:

* the central bank issues to banks and governs (admit, suspend, unsuspend, validators);
* a bank pays other banks, redeems from its own balance, works its own queue and sets
  its own sender limits (a suspended bank too: limits move no money);
* the central bank closes the settlement day, cancelling whatever is still queued;
* the regulator signs nothing that changes the ledger;
* a suspended bank can neither pay, redeem nor be paid; it can still cancel, hold,
  release or reprioritise its queued transfers (none of which moves money);
* re-applying the state a bank is already in (suspend a suspended bank, hold a held
  transfer, reprioritise to the same priority) is APPLIED and changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from straits.ledger.v1 import receipt_pb2 as receipt_pb

from ledger.day import DAY_CLOSED, SenderLimits, within_limits
from ledger.errors import (
    AlreadyExistsError,
    AmountOverflowError,
    InsufficientFundsError,
    InvalidGovernanceError,
    NotPermittedError,
    NotQueuedError,
    RejectedError,
    SuspendedError,
    UnknownAccountError,
    expected,
)
from ledger.keys import PublicKey
from ledger.queue import waits_ahead
from ledger.roles import Role
from ledger.state import URGENT, Participant, QueuedTransfer
from ledger.transaction import INT64_MAX, Transaction
from ledger.working import WorkingState

SETTLED = receipt_pb.OUTCOME_SETTLED
QUEUED = receipt_pb.OUTCOME_QUEUED
APPLIED = receipt_pb.OUTCOME_APPLIED
REJECTED = receipt_pb.OUTCOME_REJECTED


def apply(working: WorkingState, transaction: Transaction) -> int:
    """The outcome of ``transaction``; raises the refusing rule's ``RejectedError``."""
    return _RULES[transaction.kind](working, transaction)


def rejected(transaction: Transaction, error: RejectedError) -> receipt_pb.Receipt:
    """The receipt of a refusal. The code travels in ``reason``; the detail names the
    field, as an admission error does."""
    detail = f"[{error.field}] {error.detail}" if error.field else error.detail
    return receipt_pb.Receipt(
        transaction_id=transaction.id, outcome=REJECTED, reason=error.code, detail=detail
    )


def _signer(working: WorkingState, transaction: Transaction, role: Role) -> Participant:
    signer = working.participants[transaction.signer]
    if signer.role != role:
        raise NotPermittedError(
            expected(f"a {role} to sign {transaction.kind}", f"{signer.id} ({signer.role})"),
            field="signer",
        )
    return signer


def _active_bank(working: WorkingState, transaction: Transaction) -> Participant:
    signer = _signer(working, transaction, Role.BANK)
    if signer.suspended:
        raise SuspendedError(expected("an active bank", f"{signer.id} (suspended)"), field="signer")
    return signer


def _bank(working: WorkingState, bank_id: str, field: str) -> Participant:
    bank = working.participants.get(bank_id)
    if bank is None:
        raise UnknownAccountError(expected("a participant id", bank_id), field=field)
    if bank.role != Role.BANK:
        raise NotPermittedError(expected("a bank", f"{bank_id} ({bank.role})"), field=field)
    return bank


def _payable_bank(working: WorkingState, bank_id: str, field: str) -> Participant:
    bank = _bank(working, bank_id, field)
    if bank.suspended:
        raise SuspendedError(expected("an active bank", f"{bank_id} (suspended)"), field=field)
    return bank


# --- money ------------------------------------------------------------------------


def _issue(working: WorkingState, transaction: Transaction) -> int:
    _signer(working, transaction, Role.CENTRAL_BANK)
    issue = transaction.body.issue
    _payable_bank(working, issue.bank, "issue.bank")
    if working.issued + issue.amount > INT64_MAX:
        # Every balance is at most the supply, and the supply at most what was issued,
        # so bounding the issued total keeps every figure within int64.
        raise AmountOverflowError(
            expected(f"total issued to stay within {INT64_MAX}", working.issued + issue.amount),
            field="issue.amount",
        )
    working.queued_totals.check_credit(working, issue.bank, issue.amount, "issue.amount")
    working.issued += issue.amount
    working.credit(issue.bank, issue.amount)
    return APPLIED


def _redeem(working: WorkingState, transaction: Transaction) -> int:
    bank = _active_bank(working, transaction)
    amount = transaction.body.redeem.amount
    balance = working.balances[bank.id]
    if amount > balance:
        raise InsufficientFundsError(
            expected(f"at most the balance {balance}", amount), field="redeem.amount"
        )
    working.redeemed += amount
    working.debit(bank.id, amount)
    return APPLIED


def _transfer(working: WorkingState, transaction: Transaction) -> int:
    payer = _active_bank(working, transaction).id
    transfer = transaction.body.transfer
    # Each field read once: a message field costs a call every time it is read.
    payee, amount, priority = transfer.payee, transfer.amount, transfer.priority
    if payee == payer:
        raise NotPermittedError(
            expected("a payee other than the payer", payee), field="transfer.payee"
        )
    _payable_bank(working, payee, "transfer.payee")
    if (
        not transfer.queue_always
        and amount <= working.balances[payer]
        and not waits_ahead(working, payer, priority)
        and (priority == URGENT or within_limits(working.day_of(payer), payee, amount))
    ):
        working.queued_totals.check_credit(working, payee, amount, "transfer.amount")
        working.pay(payer, payee, amount, priority)
        return SETTLED
    working.queued_totals.check_queue(working, payer, payee, amount)
    working.enqueue(
        QueuedTransfer(
            transfer_id=transaction.id,
            payer=payer,
            payee=payee,
            amount=amount,
            priority=priority,
            seq=working.take_seq(),
            queued_height=working.height,
        )
    )
    return QUEUED


# --- the payer's queue -------------------------------------------------------------


def _queued_entry(working: WorkingState, transaction: Transaction) -> QueuedTransfer:
    payer = _signer(working, transaction, Role.BANK)
    transfer_id = getattr(transaction.body, transaction.kind).transfer_id
    field = f"{transaction.kind}.transfer_id"
    queue = working.peek(payer.id)
    entry = queue.get(transfer_id) if queue is not None else None
    if entry is None:
        if working.queued_by_others(transfer_id, payer.id):
            raise NotPermittedError(
                expected(f"a transfer queued by {payer.id}", "one queued by another payer"),
                field=field,
            )
        raise NotQueuedError(
            expected("the id of a queued transfer", transfer_id.hex()), field=field
        )
    return entry


def _cancel(working: WorkingState, transaction: Transaction) -> int:
    entry = _queued_entry(working, transaction)
    working.dequeue(entry)
    working.record_settlement(entry.transfer_id, receipt_pb.OUTCOME_CANCELLED)
    return APPLIED


def _set_held(held: bool) -> Callable[[WorkingState, Transaction], int]:
    def rule(working: WorkingState, transaction: Transaction) -> int:
        entry = _queued_entry(working, transaction)
        if entry.held != held:
            working.replace_queued(entry, dataclasses.replace(entry, held=held))
        return APPLIED

    return rule


def _reprioritise(working: WorkingState, transaction: Transaction) -> int:
    entry = _queued_entry(working, transaction)
    priority = transaction.body.reprioritise.priority
    if entry.priority != priority:
        working.dequeue(entry)
        working.enqueue(dataclasses.replace(entry, priority=priority, seq=working.take_seq()))
    return APPLIED


# --- sender limits and the settlement day ----------------------------------------------


def _set_limit(working: WorkingState, transaction: Transaction) -> int:
    bank = _signer(working, transaction, Role.BANK)
    request = transaction.body.set_limit
    counterparty = request.counterparty
    if counterparty:
        if counterparty == bank.id:
            raise NotPermittedError(
                expected("a counterparty other than the bank itself", counterparty),
                field="set_limit.counterparty",
            )
        _bank(working, counterparty, "set_limit.counterparty")
    day = working.day_for_writing(bank.id)
    bilateral = dict(day.limits.bilateral)
    multilateral = day.limits.multilateral
    amount = None if request.remove else request.amount
    if counterparty and amount is None:
        bilateral.pop(counterparty, None)
    elif counterparty:
        bilateral[counterparty] = amount  # type: ignore[assignment]
    else:
        multilateral = amount
    day.limits = SenderLimits(multilateral, bilateral)
    # A raised or lifted limit may let its queue move: the end-of-block pass looks again.
    working.dirty_payers.add(bank.id)
    return APPLIED


def _close_day(working: WorkingState, transaction: Transaction) -> int:
    _signer(working, transaction, Role.CENTRAL_BANK)
    day = transaction.body.close_day.day
    if day != working.day:
        raise InvalidGovernanceError(
            expected(f"the current day {working.day}", day), field="close_day.day"
        )
    cancelled: dict[str, tuple[int, int]] = {}
    for payer in working.payers_with_queues():
        queue = working.queue_for_writing(payer)
        for entry in [*queue.urgent.values(), *queue.normal.values()]:
            working.dequeue(entry)
            working.record_settlement(
                entry.transfer_id, receipt_pb.OUTCOME_CANCELLED, reason=DAY_CLOSED
            )
            count, value = cancelled.get(payer, (0, 0))
            cancelled[payer] = (count + 1, value + entry.amount)
    working.close_day(cancelled)
    return APPLIED


# --- governance --------------------------------------------------------------------


def _admit_bank(working: WorkingState, transaction: Transaction) -> int:
    _signer(working, transaction, Role.CENTRAL_BANK)
    admit = transaction.body.admit_bank
    if admit.bank in working.participants:
        raise AlreadyExistsError(
            expected("a new participant id", admit.bank), field="admit_bank.bank"
        )
    working.balances[admit.bank] = 0
    working.put_participant(
        Participant(admit.bank, Role.BANK, PublicKey.from_proto(admit.key), admit.name)
    )
    return APPLIED


def _set_suspended(suspended: bool) -> Callable[[WorkingState, Transaction], int]:
    def rule(working: WorkingState, transaction: Transaction) -> int:
        _signer(working, transaction, Role.CENTRAL_BANK)
        kind = transaction.kind
        bank = _bank(working, getattr(transaction.body, kind).bank, f"{kind}.bank")
        if bank.suspended != suspended:
            working.put_participant(dataclasses.replace(bank, suspended=suspended))
            if not suspended:
                # Its own queue may move again, and so may every entry that pays it.
                working.dirty_payers.update(working.payers_with_queues())
        return APPLIED

    return rule


def _change_validators(working: WorkingState, transaction: Transaction) -> int:
    _signer(working, transaction, Role.CENTRAL_BANK)
    change = transaction.body.change_validators
    if change.effective_height <= working.height:
        raise InvalidGovernanceError(
            expected(
                f"an effective height above this block's {working.height}", change.effective_height
            ),
            field="change_validators.effective_height",
        )
    validators = {v.id: PublicKey.from_proto(v.key) for v in change.validators}
    pending = {h: v for h, v in working.pending_validators}
    pending[change.effective_height] = validators
    working.pending_validators = tuple(sorted(pending.items()))
    return APPLIED


_RULES: dict[str, Callable[[WorkingState, Transaction], int]] = {
    "issue": _issue,
    "redeem": _redeem,
    "transfer": _transfer,
    "cancel": _cancel,
    "hold": _set_held(True),
    "release": _set_held(False),
    "reprioritise": _reprioritise,
    "admit_bank": _admit_bank,
    "suspend_bank": _set_suspended(True),
    "unsuspend_bank": _set_suspended(False),
    "change_validators": _change_validators,
    "set_limit": _set_limit,
    "close_day": _close_day,
}
