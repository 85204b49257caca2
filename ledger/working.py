"""The working copy of a state while one block executes: copy-on-write, then frozen.

Executing transaction by transaction on immutable values would copy a balance map or a
queue per transaction. Instead ``WorkingState`` copies each part of the ``State`` the
first time the block touches it (the balance map once, a payer's queue once, a replay
bucket once), lets the rules mutate the copies, and ``finish`` folds them into a new
``State`` together with the state-hash updates. The old ``State`` is never written.

A transaction that a business rule refuses must leave nothing behind, so the rules
check everything first and mutate only when the transaction is sure to succeed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from straits.ledger.v1 import receipt_pb2 as receipt_pb

from ledger import statehash
from ledger.bounds import QueuedTotals
from ledger.day import (
    CANCELLED,
    BankDay,
    DaySummary,
    DayTotals,
    WorkingDay,
)
from ledger.keys import PublicKey
from ledger.lsm import OffsettingRun
from ledger.state import (
    URGENT,
    Participant,
    PayerQueue,
    QueuedTransfer,
    ReplayBucket,
    State,
    replay_group_element,
)


class WorkingQueue:
    """A payer's queue open for writing: the two priority classes as insertion-ordered dicts."""

    __slots__ = ("normal", "urgent")

    def __init__(self, queue: PayerQueue) -> None:
        self.urgent: dict[bytes, QueuedTransfer] = dict(queue.urgent)
        self.normal: dict[bytes, QueuedTransfer] = dict(queue.normal)

    def of(self, priority: int) -> dict[bytes, QueuedTransfer]:
        return self.urgent if priority == URGENT else self.normal

    def get(self, transfer_id: bytes) -> QueuedTransfer | None:
        return self.urgent.get(transfer_id) or self.normal.get(transfer_id)

    def frozen(self) -> PayerQueue:
        return PayerQueue(self.urgent, self.normal)


class WorkingState:
    def __init__(self, state: State) -> None:
        self.base = state
        self.height = state.height + 1
        self.balances: dict[str, int] = dict(state.balances)
        self.participants: Mapping[str, Participant] = state.participants
        self._participants_copied = False
        self.issued = state.issued
        self.redeemed = state.redeemed
        self.next_seq = state.next_seq
        self.pending_validators = state.pending_validators
        self.accumulator = state.accumulator
        self.touched_accounts: set[str] = set()
        self._queues: dict[str, WorkingQueue] = {}
        self.dirty_payers: set[str] = set()
        # Ids this block consumes (every transaction it keeps), by valid_until_height.
        self.consumed_ids: dict[bytes, int] = {}
        self.settlements: list[receipt_pb.QueueSettlement] = []
        # Net queue change of the block by entry seq (None = gone): what a store writes.
        self.queue_changes: dict[int, QueuedTransfer | None] = {}
        self.day = state.day
        self.last_day = state.last_day
        # The liquidity-saving run of this block, if one ran (ledger.queue).
        self.offsetting: OffsettingRun | None = None
        self._days: dict[str, WorkingDay] = {}
        self.queued_totals = QueuedTotals()

    # --- accounts -------------------------------------------------------------------

    def credit(self, bank: str, amount: int) -> None:
        self.balances[bank] += amount
        self.touched_accounts.add(bank)
        self.dirty_payers.add(bank)

    def debit(self, bank: str, amount: int) -> None:
        self.balances[bank] -= amount
        self.touched_accounts.add(bank)

    def pay(
        self, payer: str, payee: str, amount: int, priority: int, *, by_offsetting: bool = False
    ) -> None:
        """Move ``amount`` and count it in both banks' day: totals, and the positions limits
        bind (a NORMAL transfer moves the payer's; any transfer moves the payee's)."""
        self.debit(payer, amount)
        self.credit(payee, amount)
        days = self._days
        sender = days.get(payer) or self.day_for_writing(payer)
        sender.sent(payee, amount, priority != URGENT, by_offsetting)
        receiver = days.get(payee) or self.day_for_writing(payee)
        receiver.received(payer, amount)

    def put_participant(self, participant: Participant) -> None:
        if not self._participants_copied:
            self.participants = dict(self.participants)
            self._participants_copied = True
        self.participants[participant.id] = participant  # type: ignore[index]
        self.touched_accounts.add(participant.id)

    # --- the settlement day ----------------------------------------------------------

    def day_of(self, bank: str) -> BankDay | WorkingDay | None:
        working = self._days.get(bank)
        return working if working is not None else self.base.days.get(bank)

    def day_for_writing(self, bank: str) -> WorkingDay:
        working = self._days.get(bank)
        if working is None:
            working = self._days[bank] = WorkingDay(self.base.days.get(bank, BankDay()))
            self.touched_accounts.add(bank)
        return working

    def banks_with_limits(self) -> dict[str, BankDay | WorkingDay]:
        found: dict[str, BankDay | WorkingDay] = {}
        for bank in set(self.base.days) | set(self._days):
            day = self.day_of(bank)
            if day is not None and day.limits.binds():
                found[bank] = day
        return found

    def close_day(self, cancelled: dict[str, tuple[int, int]]) -> None:
        """Summarise today (with ``cancelled``: bank -> (count, value)) and open the next."""
        banks: dict[str, DayTotals] = {}
        for bank in self.balances:
            day = self.day_for_writing(bank)
            count, value = cancelled.get(bank, (0, 0))
            day.totals[CANCELLED] = count
            day.totals[CANCELLED + 1] = value
            banks[bank] = DayTotals(*day.totals)
            day.positions = {}
            day.totals = list(DayTotals().encode())
        self.last_day = DaySummary(self.day, banks)
        self.day += 1

    # --- queues ---------------------------------------------------------------------

    def queue_for_writing(self, payer: str) -> WorkingQueue:
        """The payer's queue, copied on first write in this block."""
        working = self._queues.get(payer)
        if working is None:
            working = self._queues[payer] = WorkingQueue(self.base.queues.get(payer, PayerQueue()))
        return working

    def queued_by_others(self, transfer_id: bytes, payer: str) -> bool:
        return any(
            payer_id != payer
            and (queue := self.peek(payer_id)) is not None
            and queue.get(transfer_id) is not None
            for payer_id in self.payers_with_queues()
        )

    def peek(self, payer: str) -> WorkingQueue | PayerQueue | None:
        """The payer's queue for reading, without copying it."""
        working = self._queues.get(payer)
        return working if working is not None else self.base.queues.get(payer)

    def payers_with_queues(self) -> list[str]:
        return sorted(set(self.base.queues) | set(self._queues))

    def has_queues(self) -> bool:
        """Whether ``payers_with_queues()`` would name anyone (without sorting them)."""
        return bool(self.base.queues or self._queues)

    def enqueue(self, entry: QueuedTransfer) -> None:
        self.queue_for_writing(entry.payer).of(entry.priority)[entry.transfer_id] = entry
        self.queue_changes[entry.seq] = entry
        self.queued_totals.added(entry)
        self.accumulator = statehash.add(self.accumulator, entry.element())
        self.dirty_payers.add(entry.payer)

    def dequeue(self, entry: QueuedTransfer) -> None:
        del self.queue_for_writing(entry.payer).of(entry.priority)[entry.transfer_id]
        self.queue_changes[entry.seq] = None
        self.queued_totals.removed(entry)
        self.accumulator = statehash.remove(self.accumulator, entry.element())
        self.dirty_payers.add(entry.payer)

    def replace_queued(self, old: QueuedTransfer, new: QueuedTransfer) -> None:
        """Swap an entry for a changed copy in the same place (same priority, same turn)."""
        self.queue_for_writing(old.payer).of(old.priority)[old.transfer_id] = new
        self.queue_changes[new.seq] = new
        self.accumulator = statehash.add(
            statehash.remove(self.accumulator, old.element()), new.element()
        )
        self.dirty_payers.add(old.payer)

    def take_seq(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq

    def record_settlement(
        self, transfer_id: bytes, outcome: int, *, by_offsetting: bool = False, reason: str = ""
    ) -> None:
        self.settlements.append(
            receipt_pb.QueueSettlement(
                transfer_id=transfer_id, outcome=outcome, by_offsetting=by_offsetting, reason=reason
            )
        )

    # --- finishing --------------------------------------------------------------------

    def finish(self) -> State:
        """Fold the copies into a new State, expire replay buckets, apply validator changes."""
        base = self.base
        accumulator = self.accumulator
        for account in self.touched_accounts:
            old = base.participants.get(account)
            if old is not None:
                accumulator = statehash.remove(
                    accumulator, old.element(base.balances.get(account, 0))
                )
            accumulator = statehash.add(
                accumulator, self.participants[account].element(self.balances.get(account, 0))
            )
        days = dict(base.days)
        for bank, working_day in self._days.items():
            old = base.days.get(bank)
            if old is not None:
                accumulator = statehash.remove(accumulator, old.element(bank))
            new = working_day.frozen()
            if new.is_empty():
                days.pop(bank, None)
            else:
                days[bank] = new
                accumulator = statehash.add(accumulator, new.element(bank))
        queues = dict(base.queues)
        for payer, working in self._queues.items():
            if working.urgent or working.normal:
                queues[payer] = working.frozen()
            else:
                queues.pop(payer, None)
        replay, accumulator = self._next_replay(accumulator)
        validators, pending = _fold_validators(
            base.validators, self.pending_validators, self.height
        )
        return dataclasses.replace(
            base,
            height=self.height,
            participants=self.participants,
            balances=self.balances,
            queues=queues,
            issued=self.issued,
            redeemed=self.redeemed,
            next_seq=self.next_seq,
            validators=validators,
            pending_validators=pending,
            replay=replay,
            accumulator=accumulator,
            day=self.day,
            days=days,
            last_day=self.last_day,
        )

    def _next_replay(self, accumulator: int) -> tuple[dict[int, ReplayBucket], int]:
        # Buckets at or below this height can never admit a transaction again: forget them.
        replay: dict[int, ReplayBucket] = {}
        for valid_until_height, bucket in self.base.replay.items():
            if valid_until_height > self.height:
                replay[valid_until_height] = bucket
            else:
                accumulator = statehash.remove(accumulator, bucket.hash_sum)
        added: dict[int, list[bytes]] = {}
        for transaction_id, valid_until_height in self.consumed_ids.items():
            added.setdefault(valid_until_height, []).append(transaction_id)
        for valid_until_height, ids in added.items():
            if valid_until_height <= self.height:
                continue
            element = replay_group_element(ids, valid_until_height)
            accumulator = statehash.add(accumulator, element)
            group = tuple(ids)
            old = replay.get(valid_until_height)
            if old is not None:
                replay[valid_until_height] = ReplayBucket(
                    old.ids | frozenset(ids),
                    statehash.add(old.hash_sum, element),
                    (*old.groups, group),
                )
            else:
                replay[valid_until_height] = ReplayBucket(frozenset(ids), element, (group,))
        return replay, accumulator


def _fold_validators(
    current: Mapping[str, PublicKey],
    pending: tuple[tuple[int, Mapping[str, PublicKey]], ...],
    height: int,
) -> tuple[Mapping[str, PublicKey], tuple[tuple[int, Mapping[str, PublicKey]], ...]]:
    """Make the changes due at ``height`` current; keep the later ones pending."""
    for effective_height, validators in pending:
        if effective_height <= height:
            current = validators
    return current, tuple((h, v) for h, v in pending if h > height)
