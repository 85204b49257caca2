"""Keeping every sum the ledger reports within int64.

Amounts, balances and supply are int64 on the wire, so every figure the ledger keeps
must fit: a bank's balance, what it has queued out, what is queued towards it, its
position (balance + queued in - queued out) and the supply. Issues are bounded by the
total issued (``rules``), and every balance is at most the supply. Queued amounts are
not money yet, so nothing else bounds them: a payer could queue any number of
transfers of up to 2^63-1. Two invariants close that, checked before a rule writes:

* a payer's queued-out total stays within int64 (checked when a transfer queues);
* a bank's balance plus its queued-in total stays within int64 (checked when a
  transfer queues towards it and whenever its balance grows by an issue or a
  transfer that settles at once). A queued transfer that settles moves its amount
  from queued-in to balance, and a cancel only lowers sums, so neither can break it.

Together they bound the position between -(2^63-1) and 2^63-1.

``QueuedTotals`` holds the per-bank sums for one block. It scans the queues the first
time a block needs it, so a block that queues nothing and pays nobody with queued
transfers towards it costs nothing, and follows each enqueue and dequeue afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ledger.errors import AmountOverflowError, expected
from ledger.state import QueuedTransfer
from ledger.transaction import INT64_MAX


class _Queue(Protocol):
    @property
    def urgent(self) -> Mapping[bytes, QueuedTransfer]: ...

    @property
    def normal(self) -> Mapping[bytes, QueuedTransfer]: ...


class _Queues(Protocol):
    """What ``ledger.working.WorkingState`` offers (this module cannot import it)."""

    balances: dict[str, int]

    def payers_with_queues(self) -> list[str]: ...

    def has_queues(self) -> bool: ...

    def peek(self, payer: str) -> _Queue | None: ...


class QueuedTotals:
    __slots__ = ("_incoming", "_outgoing")

    def __init__(self) -> None:
        self._incoming: dict[str, int] | None = None
        self._outgoing: dict[str, int] = {}

    def _load(self, queues: _Queues) -> dict[str, int]:
        if self._incoming is None:
            incoming: dict[str, int] = {}
            outgoing: dict[str, int] = {}
            for payer in queues.payers_with_queues():
                queue = queues.peek(payer)
                if queue is None:
                    continue
                for entry in (*queue.urgent.values(), *queue.normal.values()):
                    incoming[entry.payee] = incoming.get(entry.payee, 0) + entry.amount
                    outgoing[payer] = outgoing.get(payer, 0) + entry.amount
            self._incoming, self._outgoing = incoming, outgoing
        return self._incoming

    def added(self, entry: QueuedTransfer) -> None:
        self._shift(entry, entry.amount)

    def removed(self, entry: QueuedTransfer) -> None:
        self._shift(entry, -entry.amount)

    def _shift(self, entry: QueuedTransfer, amount: int) -> None:
        # Before the first scan there is nothing to follow: the scan will see the entry.
        if self._incoming is None:
            return
        self._incoming[entry.payee] = self._incoming.get(entry.payee, 0) + amount
        self._outgoing[entry.payer] = self._outgoing.get(entry.payer, 0) + amount

    def check_queue(self, queues: _Queues, payer: str, payee: str, amount: int) -> None:
        """Refuse a transfer of ``amount`` joining ``payer``'s queue if a sum would overflow."""
        incoming = self._load(queues)
        outgoing = self._outgoing.get(payer, 0) + amount
        if outgoing > INT64_MAX:
            raise AmountOverflowError(
                expected(f"{payer}'s queued-out total to stay within {INT64_MAX}", outgoing),
                field="transfer.amount",
            )
        held = queues.balances[payee] + incoming.get(payee, 0) + amount
        if held > INT64_MAX:
            raise AmountOverflowError(
                expected(f"{payee}'s balance plus queued-in to stay within {INT64_MAX}", held),
                field="transfer.amount",
            )

    def check_credit(self, queues: _Queues, bank: str, amount: int, field: str) -> None:
        """Refuse crediting ``amount`` to ``bank`` if its balance plus queued-in would overflow."""
        held = queues.balances[bank] + amount
        if self._incoming is not None or queues.has_queues():
            held += self._load(queues).get(bank, 0)
        if held > INT64_MAX:
            raise AmountOverflowError(
                expected(f"{bank}'s balance plus queued-in to stay within {INT64_MAX}", held),
                field=field,
            )
