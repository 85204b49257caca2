"""The RTGS queue: which queued transfers settle, and when.

Order within a payer's queue is priority (URGENT before NORMAL), then arrival (the
chain-wide ``seq`` taken when the entry joined its priority class; a reprioritised
entry joins the back of its new class).

Settlement is strict within a payer: walking the queue in order, the first *eligible*
entry the payer cannot cover, or that would take a NORMAL transfer past one of the
payer's sender limits (``ledger.day``), stops the walk, so nothing behind it overtakes it. An entry
is not eligible while it is held or while its payee is suspended; such entries are
skipped, not blocking, so one frozen counterparty cannot freeze a bank's whole queue.
A suspended payer's queue does not move at all.

``settle_queues`` runs once at the end of every block, over the payers whose situation
improved in it (funds arrived, an entry joined, was released or reprioritised, a bank
was unsuspended), payer by payer in id order and again until nothing moves, so every
node settles the same entries in the same order.

Then, in every block where a queue, a balance or a participant changed, the
liquidity-saving mechanism (``ledger.lsm``) settles at once the largest set of eligible
queue prefixes that can settle together: gridlocked payers that cover each other. After
the ordinary pass no payer can cover its next eligible entry alone, so whatever the
mechanism settles needed the others' offsetting payments, and its settlements say so.
After it nothing more can settle: the set is the largest, so no payer could add its next
entry to it.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain

from straits.ledger.v1 import receipt_pb2 as receipt_pb

from ledger.day import within_limits
from ledger.lsm import OffsettingRun, largest_offsetting_set
from ledger.state import URGENT, PayerQueue, QueuedTransfer
from ledger.working import WorkingQueue, WorkingState

# Seconds from some fixed point, handed in by the runtime: the ledger reads no clock itself.
Stopwatch = Callable[[], float]


def is_eligible(working: WorkingState, entry: QueuedTransfer) -> bool:
    return not entry.held and not working.participants[entry.payee].suspended


def waits_ahead(working: WorkingState, payer: str, priority: int) -> bool:
    """True when an eligible entry of equal or higher priority waits in the payer's queue.

    A new transfer in that case joins the queue behind it instead of settling at once.
    """
    queue = working.peek(payer)
    if queue is None:
        return False
    classes = (queue.urgent,) if priority == URGENT else (queue.urgent, queue.normal)
    return any(is_eligible(working, entry) for entries in classes for entry in entries.values())


def settle_queues(working: WorkingState, stopwatch: Stopwatch | None = None) -> None:
    while working.dirty_payers:
        payers = sorted(working.dirty_payers)
        working.dirty_payers = set()
        for payer in payers:
            queue = working.peek(payer)
            if queue is not None and not working.participants[payer].suspended:
                _settle_payer(working, payer, queue)
    if working.queue_changes or working.touched_accounts:
        _offset(working, stopwatch)


def eligible_queues(working: WorkingState) -> dict[str, list[QueuedTransfer]]:
    """Every active payer's eligible entries in queue order (payers with none left out)."""
    eligible: dict[str, list[QueuedTransfer]] = {}
    participants = working.participants
    for payer in working.payers_with_queues():
        queue = working.peek(payer)
        if queue is None or participants[payer].suspended:
            continue
        entries = [
            entry
            for entry in chain(queue.urgent.values(), queue.normal.values())
            if not entry.held and not participants[entry.payee].suspended
        ]
        if entries:
            eligible[payer] = entries
    return eligible


def _offset(working: WorkingState, stopwatch: Stopwatch | None) -> None:
    started = stopwatch() if stopwatch is not None else 0.0
    eligible = eligible_queues(working)
    if not eligible:
        return
    limited = working.banks_with_limits()
    counts = largest_offsetting_set(
        working.balances,
        eligible,
        {bank: day.limits for bank, day in limited.items()},
        {(bank, q): v for bank, day in limited.items() for q, v in day.positions.items()},
    )
    released = released_value = 0
    for payer in sorted(eligible):
        for entry in eligible[payer][: counts[payer]]:
            _settle(working, entry, by_offsetting=True)
            released += 1
            released_value += entry.amount
    considered = sum(len(entries) for entries in eligible.values())
    seconds = stopwatch() - started if stopwatch is not None else 0.0
    working.offsetting = OffsettingRun(considered, released, released_value, seconds)
    # Nothing more can settle: the set taken is the largest (see the module docstring).
    working.dirty_payers = set()


def _settle_payer(working: WorkingState, payer: str, queue: WorkingQueue | PayerQueue) -> None:
    balance = working.balances[payer]
    day = working.day_of(payer)
    due: list[QueuedTransfer] = []
    # Normal transfers due so far, by payee: they count for the limits of the next ones.
    pending: dict[str, int] = {}
    for entry in chain(queue.urgent.values(), queue.normal.values()):
        if not is_eligible(working, entry):
            continue
        if entry.amount > balance:
            break
        if entry.priority != URGENT:
            if not within_limits(day, entry.payee, entry.amount, pending):
                break
            pending[entry.payee] = pending.get(entry.payee, 0) + entry.amount
        balance -= entry.amount
        due.append(entry)
    for entry in due:
        _settle(working, entry, by_offsetting=False)
    # Dequeuing marked the payer dirty again, but what was left cannot settle now.
    working.dirty_payers.discard(payer)


def _settle(working: WorkingState, entry: QueuedTransfer, *, by_offsetting: bool) -> None:
    working.dequeue(entry)
    working.pay(entry.payer, entry.payee, entry.amount, entry.priority, by_offsetting=by_offsetting)
    working.record_settlement(
        entry.transfer_id, receipt_pb.OUTCOME_SETTLED, by_offsetting=by_offsetting
    )
