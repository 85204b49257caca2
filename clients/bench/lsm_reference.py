"""A slow, obviously correct reference for the liquidity-saving mechanism: the rules of
``ledger.lsm`` written out directly, and brute force over every choice of prefixes.

The property tests check the mechanism against it, and ``make bench``'s ``lsm`` section
measures quality and the price of order with it."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

from ledger.day import SenderLimits
from ledger.state import URGENT, QueuedTransfer


def feasible(
    balances: Mapping[str, int],
    chosen: Iterable[QueuedTransfer],
    limits: Mapping[str, SenderLimits] | None = None,
    positions: Mapping[tuple[str, str], int] | None = None,
) -> bool:
    """True when settling ``chosen`` all at once breaks no balance and no limit."""
    chosen = list(chosen)
    limits = limits or {}
    after = dict(balances)
    position = dict(positions or {})
    sends_normal: set[tuple[str, str]] = set()
    for entry in chosen:
        after[entry.payer] -= entry.amount
        after[entry.payee] += entry.amount
        position[(entry.payee, entry.payer)] = (
            position.get((entry.payee, entry.payer), 0) - entry.amount
        )
        if entry.priority != URGENT:
            position[(entry.payer, entry.payee)] = (
                position.get((entry.payer, entry.payee), 0) + entry.amount
            )
            sends_normal.add((entry.payer, entry.payee))
    if any(balance < 0 for balance in after.values()):
        return False
    for bank, lim in limits.items():
        for counterparty, limit in lim.bilateral.items():
            if (bank, counterparty) in sends_normal and position.get(
                (bank, counterparty), 0
            ) > limit:
                return False
        if lim.multilateral is None:
            continue
        others = [q for q in after if q != bank and q not in lim.bilateral]
        if (
            any((bank, q) in sends_normal for q in others)
            and sum(position.get((bank, q), 0) for q in others) > lim.multilateral
        ):
            return False
    return True


def best_prefixes(
    balances: Mapping[str, int],
    eligible: Mapping[str, Sequence[QueuedTransfer]],
    limits: Mapping[str, SenderLimits] | None = None,
    positions: Mapping[tuple[str, str], int] | None = None,
) -> list[dict[str, int]]:
    """Every feasible choice of one prefix per payer (as prefix lengths)."""
    payers = sorted(eligible)
    found = []
    for lengths in itertools.product(*(range(len(eligible[p]) + 1) for p in payers)):
        chosen = [e for p, n in zip(payers, lengths, strict=True) for e in eligible[p][:n]]
        if feasible(balances, chosen, limits, positions):
            found.append(dict(zip(payers, lengths, strict=True)))
    return found


def best_subset_value(balances: Mapping[str, int], entries: Sequence[QueuedTransfer]) -> int:
    """The most value any subset of ``entries`` settles at once, queue order ignored and
    without limits: each subset's balances built from the subset minus its lowest entry."""
    banks = sorted(balances)
    index = {bank: i for i, bank in enumerate(banks)}
    start = tuple(balances[bank] for bank in banks)
    nets: list[tuple[int, ...]] = [start]
    values = [0]
    best = 0
    for mask in range(1, 1 << len(entries)):
        low = (mask & -mask).bit_length() - 1
        entry = entries[low]
        net = list(nets[mask & (mask - 1)])
        net[index[entry.payer]] -= entry.amount
        net[index[entry.payee]] += entry.amount
        nets.append(tuple(net))
        values.append(values[mask & (mask - 1)] + entry.amount)
        if values[mask] > best and min(net) >= 0:
            best = values[mask]
    return best


def value(eligible: Mapping[str, Sequence[QueuedTransfer]], lengths: Mapping[str, int]) -> int:
    return sum(e.amount for p, n in lengths.items() for e in eligible[p][:n])
