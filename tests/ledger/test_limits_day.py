"""Sender limits and the settlement day, as the banks and the central bank live them."""

from __future__ import annotations

import pytest
from straits.ledger.v1 import receipt_pb2 as receipt_pb

from ledger.day import DAY_CLOSED, DayTotals, SenderLimits
from ledger.errors import MalformedTransactionError
from ledger.state import URGENT
from tests.ledger.conftest import Chain

SETTLED = receipt_pb.OUTCOME_SETTLED
QUEUED = receipt_pb.OUTCOME_QUEUED
APPLIED = receipt_pb.OUTCOME_APPLIED
REJECTED = receipt_pb.OUTCOME_REJECTED
CANCELLED = receipt_pb.OUTCOME_CANCELLED


def funded(**balances: int) -> Chain:
    chain = Chain()
    chain.commit(*(chain.issue(bank, amount) for bank, amount in balances.items()))
    return chain


def outcomes(execution) -> list[int]:
    return [r.outcome for r in execution.receipts]


def test_a_normal_payment_past_a_bilateral_limit_queues_though_funds_suffice():
    chain = funded(**{"bank-a": 1_000})
    chain.commit(chain.set_limit("bank-a", 300, counterparty="bank-b"))
    first = chain.transfer("bank-a", "bank-b", 200)
    second = chain.transfer("bank-a", "bank-b", 200)
    execution = chain.commit(first, second)
    assert outcomes(execution) == [SETTLED, QUEUED], "200 + 200 would pass the 300 limit"
    assert chain.state.days["bank-a"].positions == {"bank-b": 200}
    # Money received from B makes room: the queued one settles in the ordinary pass.
    execution = chain.commit(chain.issue("bank-b", 150), chain.transfer("bank-b", "bank-a", 150))
    assert [(s.transfer_id, s.by_offsetting) for s in execution.settlements] == [(second.id, False)]
    assert chain.state.days["bank-a"].positions == {"bank-b": 250}


def test_urgent_payments_are_not_subject_to_limits():
    chain = funded(**{"bank-a": 1_000})
    chain.commit(chain.set_limit("bank-a", 0), chain.set_limit("bank-a", 0, "bank-b"))
    execution = chain.commit(
        chain.transfer("bank-a", "bank-b", 400, URGENT),
        chain.transfer("bank-a", "bank-c", 400, URGENT),
        chain.transfer("bank-a", "bank-c", 1),
    )
    assert outcomes(execution) == [SETTLED, SETTLED, QUEUED]


def test_the_multilateral_limit_covers_the_banks_without_a_bilateral_one():
    chain = funded(**{"bank-a": 1_000})
    chain.commit(
        chain.set_limit("bank-a", 100), chain.set_limit("bank-a", 500, counterparty="bank-b")
    )
    execution = chain.commit(
        chain.transfer("bank-a", "bank-b", 400),
        chain.transfer("bank-a", "bank-c", 100),
        chain.transfer("bank-a", "bank-c", 1),
    )
    assert outcomes(execution) == [SETTLED, SETTLED, QUEUED]
    assert chain.state.days["bank-a"].limits == SenderLimits(100, {"bank-b": 500})


def test_offsetting_respects_limits_and_counts_what_comes_back():
    # A's limit toward B is 50. A two-way swap of 100 leaves A's position at 0: it settles.
    chain = Chain()
    chain.commit(chain.set_limit("bank-a", 50, counterparty="bank-b"))
    swap = [chain.transfer("bank-a", "bank-b", 100), chain.transfer("bank-b", "bank-a", 100)]
    execution = chain.commit(*swap)
    assert {s.transfer_id for s in execution.settlements if s.by_offsetting} == {t.id for t in swap}
    # In a cycle A pays B 100 but gets its 100 from C: its position toward B would be 100.
    cycle = [
        chain.transfer("bank-a", "bank-b", 100),
        chain.transfer("bank-b", "bank-c", 100),
        chain.transfer("bank-c", "bank-a", 100),
    ]
    execution = chain.commit(*cycle)
    assert not execution.settlements, "the cycle would take A past its limit toward B"
    # A multilateral limit instead nets everything A receives: the cycle clears.
    execution = chain.commit(
        chain.set_limit("bank-a", remove=True, counterparty="bank-b"), chain.set_limit("bank-a", 50)
    )
    assert {s.transfer_id for s in execution.settlements} == {t.id for t in cycle}


def test_a_limit_is_the_banks_own_and_names_another_bank():
    chain = Chain()
    execution = chain.commit(
        chain.set_limit("bank-a", 10, counterparty="bank-a"),
        chain.set_limit("bank-a", 10, counterparty="nobody"),
        chain.set_limit("bank-a", 10, counterparty="regulator"),
        chain.sign("regulator", set_limit=chain.set_limit("bank-a", 10).body.set_limit),
    )
    assert [(r.outcome, r.reason) for r in execution.receipts] == [
        (REJECTED, "not_permitted"),
        (REJECTED, "unknown_account"),
        (REJECTED, "not_permitted"),
        (REJECTED, "not_permitted"),
    ]
    assert "bank-a" not in chain.state.days, "a refused limit leaves nothing behind"
    with pytest.raises(MalformedTransactionError):
        chain.set_limit("bank-a", -1)
    with pytest.raises(MalformedTransactionError):
        chain.set_limit("bank-a", 5, remove=True)


def test_closing_the_day_cancels_the_queue_resets_positions_and_leaves_a_summary():
    chain = funded(**{"bank-a": 100})
    chain.commit(chain.set_limit("bank-a", 60))
    sent = chain.transfer("bank-a", "bank-b", 50)
    over_limit = chain.transfer("bank-a", "bank-c", 20)
    unfunded = chain.transfer("bank-b", "bank-c", 500)
    swap = [chain.transfer("bank-b", "bank-c", 30), chain.transfer("bank-c", "bank-b", 30)]
    chain.commit(sent, over_limit, unfunded)
    chain.commit(*swap)
    assert chain.state.queues, "B's 500 blocks its swap payment, so C's waits too"
    execution = chain.commit(chain.close_day(1))
    assert outcomes(execution) == [APPLIED]
    assert sorted((s.transfer_id, s.outcome, s.reason) for s in execution.settlements) == sorted(
        (t.id, CANCELLED, DAY_CLOSED) for t in (over_limit, unfunded, *swap)
    )
    state = chain.state
    assert not state.queues and state.day == 2
    summary = state.last_day
    assert summary.day == 1
    assert summary.banks["bank-a"] == DayTotals(
        sent_count=1, sent_value=50, cancelled_count=1, cancelled_value=20
    )
    assert summary.banks["bank-b"] == DayTotals(
        received_count=1, received_value=50, cancelled_count=2, cancelled_value=530
    )
    assert summary.banks["bank-c"] == DayTotals(cancelled_count=1, cancelled_value=30)
    # Limits stand; positions start again: A may send 60 more today.
    assert state.days["bank-a"].limits.multilateral == 60
    assert not state.days["bank-a"].positions
    execution = chain.commit(chain.transfer("bank-a", "bank-c", 50))
    assert outcomes(execution) == [SETTLED]


def test_only_the_central_bank_closes_and_only_the_current_day():
    chain = Chain()
    execution = chain.commit(
        chain.close_day(2),
        chain.sign("bank-a", close_day=chain.close_day(1).body.close_day),
    )
    assert [(r.outcome, r.reason) for r in execution.receipts] == [
        (REJECTED, "invalid_governance"),
        (REJECTED, "not_permitted"),
    ]
    assert chain.state.day == 1 and chain.state.last_day is None
    chain.commit(chain.close_day(1))
    execution = chain.commit(chain.close_day(1))
    assert execution.receipts[0].reason == "invalid_governance", "closing twice is refused"


def test_offsetting_counts_in_the_day_totals():
    chain = Chain()
    swap = [chain.transfer("bank-a", "bank-b", 70), chain.transfer("bank-b", "bank-a", 70)]
    chain.commit(*swap)
    totals = chain.state.days["bank-a"].totals
    assert (totals.sent_count, totals.offset_count, totals.offset_value) == (1, 1, 70)
