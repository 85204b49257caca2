"""The liquidity-saving mechanism: the largest set of queued transfers that settle together.

Input: every active payer's *eligible* queue (not held, payee not suspended; urgent
entries first, then normal ones, each class in arrival order), the balances, and the
sender limits with today's positions. Output: for every payer, how many entries of the
front of its eligible queue settle at once, atomically. A choice of one prefix per payer
is *feasible* when, with all of it applied at once,

* every balance is non-negative, and
* every payer that settles a NORMAL transfer in it stays within each of its limits
  (urgent transfers are not subject to limits; money received counts for every limit).

Uniqueness. Each bank's condition depends on its own prefix (longer: more outflow) and
on the others' prefixes only through its inflows (longer: more inflow, which only
helps). Take two feasible choices A and B and let C give each payer the longer of its
two prefixes. A payer p whose prefix in C comes from A sends in C exactly what it sends
in A and receives in C at least what it receives in A, so its condition holds in C as in
A. Hence C is feasible: feasible choices are closed under this union, and there is one
largest choice, containing every other. It is the same set whatever order the banks are
walked in.

Algorithm (the greatest fixed point). Start with every eligible entry included. While
some bank breaks its condition, drop that bank's last included entry (in practice: a
bank taken from the worklist drops entries until it no longer breaks it, then the
payees of what it dropped are checked again). Dropping never
removes an entry of the largest feasible choice M: if p breaks its condition with
prefix S_p and M_p were as long, p would send the same and receive less or equal in M,
so M would break it too; so M_p is shorter than S_p and the dropped entry is outside
M. When nothing breaks, the choice is feasible and contains M, so it is M. A bank with
nothing included cannot break a condition (its balance is not negative to begin with
and only inflows remain; limits bind only a bank that sends a normal transfer), so no
prefix is ever asked to shrink below empty. Each entry is dropped at most once and each
drop re-checks two banks, so a run costs O(entries + drops x limits per bank).

Everything is integer arithmetic on Python ints: intermediate sums may exceed int64
but every result (the balances after the run) is within the supply.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ledger.day import SenderLimits
from ledger.state import URGENT, QueuedTransfer


@dataclass(frozen=True, slots=True)
class OffsettingRun:
    """What one run of the mechanism did in a block: for metrics and the bank's view."""

    considered: int  # eligible queued transfers it looked at
    released: int  # of which it settled
    released_value: int
    # How long choosing the set took, by the stopwatch the runtime handed in (0.0 without
    # one); for metrics only: nothing in the state or the block depends on it.
    seconds: float = 0.0


def largest_offsetting_set(
    balances: Mapping[str, int],
    eligible: Mapping[str, Sequence[QueuedTransfer]],
    limits: Mapping[str, SenderLimits] | None = None,
    positions: Mapping[tuple[str, str], int] | None = None,
) -> dict[str, int]:
    """For each payer of ``eligible``, the length of its prefix in the largest feasible choice.

    ``positions[(p, q)]`` is p's net position toward q so far today: normal transfers p
    sent to q minus every transfer p received from q (missing means 0).
    """
    limits = limits or {}
    positions = positions or {}
    included = {payer: len(entries) for payer, entries in eligible.items()}
    net = dict(balances)
    for payer, entries in eligible.items():
        for entry in entries:
            net[payer] -= entry.amount
            net[entry.payee] += entry.amount
    bounds = _Bounds(limits, positions, eligible)
    limited = bounds.active

    def breaks(bank: str) -> bool:
        return net[bank] < 0 or (limited and bounds.exceeded(bank))

    work = deque(bank for bank in sorted(net) if breaks(bank))
    waiting = set(work)
    while work:
        payer = work.popleft()
        waiting.discard(payer)
        # Drop from the back of this payer's prefix until it stops breaking its
        # condition: each drop is one the argument above allows, so the batch is too.
        count = included.get(payer, 0)
        entries = eligible.get(payer, ())
        payees = []
        while breaks(payer):
            if count == 0:
                # Impossible by the argument above; refusing beats settling a wrong set.
                raise AssertionError(f"{payer} breaks its condition with nothing included")
            count -= 1
            entry = entries[count]
            net[payer] += entry.amount
            net[entry.payee] -= entry.amount
            if limited:
                bounds.drop(entry)
            payees.append(entry.payee)
        if payees:
            included[payer] = count
        for bank in payees:
            if bank not in waiting and breaks(bank):
                waiting.add(bank)
                work.append(bank)
    return included


class _Bounds:
    """Each limited bank's positions under the current choice, updated per dropped entry."""

    __slots__ = ("_bilateral", "_limits", "_multilateral", "_normal_count")

    def __init__(
        self,
        limits: Mapping[str, SenderLimits],
        positions: Mapping[tuple[str, str], int],
        eligible: Mapping[str, Sequence[QueuedTransfer]],
    ) -> None:
        self._limits = {bank: lim for bank, lim in limits.items() if lim.binds()}
        # Position toward each bilateral counterparty, and toward all the others together.
        self._bilateral: dict[tuple[str, str], int] = {}
        self._multilateral: dict[str, int] = {}
        # Included normal transfers per (payer, counterparty or "" for the others).
        self._normal_count: dict[tuple[str, str], int] = {}
        for bank, lim in self._limits.items():
            self._multilateral[bank] = 0
            for counterparty in lim.bilateral:
                self._bilateral[(bank, counterparty)] = 0
        if not self._limits:
            return
        for (bank, counterparty), position in positions.items():
            self._shift(bank, counterparty, position)
        for entries in eligible.values():
            for entry in entries:
                self._apply(entry, 1)

    @property
    def active(self) -> bool:
        return bool(self._limits)

    def drop(self, entry: QueuedTransfer) -> None:
        self._apply(entry, -1)

    def exceeded(self, bank: str) -> bool:
        lim = self._limits.get(bank)
        if lim is None:
            return False
        if (
            lim.multilateral is not None
            and self._normal_count.get((bank, ""), 0) > 0
            and self._multilateral[bank] > lim.multilateral
        ):
            return True
        return any(
            self._normal_count.get((bank, counterparty), 0) > 0
            and self._bilateral[(bank, counterparty)] > limit
            for counterparty, limit in lim.bilateral.items()
        )

    def _apply(self, entry: QueuedTransfer, sign: int) -> None:
        amount = sign * entry.amount
        # The payee receives: its position toward the payer falls, whatever the priority.
        self._shift(entry.payee, entry.payer, -amount)
        if entry.priority != URGENT:
            self._shift(entry.payer, entry.payee, amount)
            lim = self._limits.get(entry.payer)
            if lim is not None:
                key = (entry.payer, entry.payee if entry.payee in lim.bilateral else "")
                self._normal_count[key] = self._normal_count.get(key, 0) + sign

    def _shift(self, bank: str, counterparty: str, amount: int) -> None:
        lim = self._limits.get(bank)
        if lim is None:
            return
        if counterparty in lim.bilateral:
            self._bilateral[(bank, counterparty)] += amount
        else:
            self._multilateral[bank] += amount
