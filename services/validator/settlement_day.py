"""The settlement day as the API shows it: a bank's limits with where it stands against
each, its figures so far today and for the last closed day, and what waits in its queue.
Read from a ledger ``State``; shared by every service that returns an ``Account``."""

from __future__ import annotations

from straits.common.v1 import common_pb2 as common_pb

from ledger.day import BankDay, DayTotals
from ledger.state import State


def day_totals(totals: DayTotals) -> common_pb.DayTotals:
    return common_pb.DayTotals(
        sent_count=totals.sent_count,
        sent_value=totals.sent_value,
        received_count=totals.received_count,
        received_value=totals.received_value,
        offset_count=totals.offset_count,
        offset_value=totals.offset_value,
        cancelled_count=totals.cancelled_count,
        cancelled_value=totals.cancelled_value,
    )


def settlement_day(state: State, bank: str, queued_count: int) -> common_pb.SettlementDay:
    day = state.days.get(bank, BankDay())
    view = common_pb.SettlementDay(
        day=state.day, totals=day_totals(day.totals), queued_count=queued_count
    )
    limits = day.limits
    if limits.multilateral is not None:
        others = sum(v for q, v in day.positions.items() if q not in limits.bilateral)
        view.limits.add(amount=limits.multilateral, position=others)
    for counterparty in sorted(limits.bilateral):
        view.limits.add(
            counterparty=counterparty,
            amount=limits.bilateral[counterparty],
            position=day.positions.get(counterparty, 0),
        )
    if state.last_day is not None:
        view.last_day = state.last_day.day
        totals = state.last_day.banks.get(bank)
        if totals is not None:
            view.last_day_totals.CopyFrom(day_totals(totals))
    return view


def gridlock_view(state: State) -> common_pb.Gridlock:
    count = sum(len(queue) for queue in state.queues.values())
    value = sum(entry.amount for queue in state.queues.values() for entry in queue)
    return common_pb.Gridlock(gridlock=count > 0, queued_count=count, queued_value=value)
