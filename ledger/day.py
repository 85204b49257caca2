"""The settlement day: each bank's sender limits, today's positions and totals, and the
summary a close leaves behind.

A bank's *position* toward a counterparty is what limits bind: NORMAL transfers it sent
to it today minus every transfer it received from it today (urgent ones too, so money
received always makes room). Its multilateral position is the sum of its positions
toward the banks it set no bilateral limit for. A NORMAL transfer settles only if the
payer's position it moves stays within the limit afterwards; urgent ones are not
subject to limits.

Running totals are integers kept within int64: a figure that would pass the bound stays
at it (a day's turnover would have to exceed 9.2e18 minor units), so every node agrees
and every figure fits a signed 64-bit column and the state hash's encoding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ledger import statehash

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
DAY_CLOSED = "day_closed"


def bounded(value: int) -> int:
    return min(max(value, INT64_MIN), INT64_MAX)


@dataclass(frozen=True, slots=True)
class SenderLimits:
    """A bank's limits on its position: toward each named counterparty (``bilateral``) and
    toward all the others together (``multilateral``); None or absent means no limit."""

    multilateral: int | None = None
    bilateral: Mapping[str, int] = field(default_factory=dict)

    def binds(self) -> bool:
        return self.multilateral is not None or bool(self.bilateral)


@dataclass(frozen=True, slots=True)
class DayTotals:
    """What one bank did in one settlement day."""

    sent_count: int = 0
    sent_value: int = 0
    received_count: int = 0
    received_value: int = 0
    offset_count: int = 0  # of the sent ones, settled by offsetting
    offset_value: int = 0
    cancelled_count: int = 0  # queued transfers cancelled at the close
    cancelled_value: int = 0

    def encode(self) -> tuple[int, ...]:
        return (
            self.sent_count,
            self.sent_value,
            self.received_count,
            self.received_value,
            self.offset_count,
            self.offset_value,
            self.cancelled_count,
            self.cancelled_value,
        )


@dataclass(frozen=True, slots=True)
class BankDay:
    """One bank's standing limits and its figures for the current day."""

    limits: SenderLimits = field(default_factory=SenderLimits)
    positions: Mapping[str, int] = field(default_factory=dict)
    totals: DayTotals = field(default_factory=DayTotals)

    def is_empty(self) -> bool:
        return not self.limits.binds() and not self.positions and self.totals == DayTotals()

    def element(self, bank: str) -> int:
        multilateral = self.limits.multilateral
        parts: list[str | int] = [
            bank,
            multilateral is not None,
            multilateral or 0,
            len(self.limits.bilateral),
        ]
        for counterparty in sorted(self.limits.bilateral):
            parts += [counterparty, self.limits.bilateral[counterparty]]
        parts.append(len(self.positions))
        for counterparty in sorted(self.positions):
            parts += [counterparty, self.positions[counterparty]]
        parts += self.totals.encode()
        return statehash.element(statehash.encode(b"bank-day", *parts))


@dataclass(frozen=True, slots=True)
class DaySummary:
    """The closed day ``day``: every bank's totals (cancelled ones included)."""

    day: int
    banks: Mapping[str, DayTotals]

    def encoding(self) -> bytes:
        parts: list[str | int] = [self.day, len(self.banks)]
        for bank in sorted(self.banks):
            parts += [bank, *self.banks[bank].encode()]
        return statehash.encode(b"day-summary", *parts)


# Where each count sits in ``DayTotals.encode()`` (its value follows it).
SENT, RECEIVED, OFFSET, CANCELLED = 0, 2, 4, 6


def _count(totals: list[int], at: int, amount: int) -> None:
    """One more payment of ``amount`` in the count at ``at`` and the sum after it, each
    held at INT64_MAX (a comparison: ``min`` is a call, and this runs per payment)."""
    count, total = totals[at] + 1, totals[at + 1] + amount
    totals[at] = count if count < INT64_MAX else INT64_MAX
    totals[at + 1] = total if total < INT64_MAX else INT64_MAX


class WorkingDay:
    """A bank's day open for writing while a block executes."""

    __slots__ = ("limits", "positions", "totals")

    def __init__(self, day: BankDay) -> None:
        self.limits = day.limits
        self.positions = dict(day.positions)
        self.totals = list(day.totals.encode())

    def sent(self, payee: str, amount: int, normal: bool, by_offsetting: bool) -> None:
        totals = self.totals
        _count(totals, SENT, amount)
        if by_offsetting:
            _count(totals, OFFSET, amount)
        if normal:
            self._shift(payee, amount)

    def received(self, payer: str, amount: int) -> None:
        _count(self.totals, RECEIVED, amount)
        self._shift(payer, -amount)

    def _shift(self, counterparty: str, amount: int) -> None:
        value = self.positions.get(counterparty, 0) + amount
        if not INT64_MIN <= value <= INT64_MAX:
            value = bounded(value)
        if value:
            self.positions[counterparty] = value
        else:
            self.positions.pop(counterparty, None)

    def frozen(self) -> BankDay:
        return BankDay(self.limits, self.positions, DayTotals(*self.totals))


def within_limits(
    day: BankDay | WorkingDay | None,
    payee: str,
    amount: int,
    pending: Mapping[str, int] | None = None,
) -> bool:
    """Whether a NORMAL transfer of ``amount`` to ``payee`` keeps the payer within its
    limits, with ``pending`` (payee -> amount) normal transfers of it settling first."""
    if day is None or not day.limits.binds():
        return True
    pending = pending or {}
    limits = day.limits
    if payee in limits.bilateral:
        position = day.positions.get(payee, 0) + pending.get(payee, 0) + amount
        return position <= limits.bilateral[payee]
    if limits.multilateral is None:
        return True
    bilateral = limits.bilateral
    position = (
        amount
        + sum(v for q, v in day.positions.items() if q not in bilateral)
        + sum(v for q, v in pending.items() if q not in bilateral)
    )
    return position <= limits.multilateral
