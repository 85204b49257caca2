"""Every sum the ledger keeps stays within int64, whatever amounts banks queue.

Balances, queued-in and queued-out totals, positions and the supply are int64 on
the wire. A transfer or issue that would push one of them past 2^63-1 is REJECTED
with reason ``overflow`` (OUT_OF_RANGE in the status table) and changes nothing.
"""

from __future__ import annotations

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from straits.common.v1 import common_pb2 as common_pb
from straits.ledger.v1 import receipt_pb2 as receipt_pb

from ledger.errors import AmountOverflowError
from ledger.state import State
from ledger.transaction import INT64_MAX
from services.common.errors import status_code_of
from tests.ledger.conftest import BANKS, Chain

REJECTED = receipt_pb.OUTCOME_REJECTED
QUEUED = receipt_pb.OUTCOME_QUEUED
INT64_MIN = -(2**63)


def sums_of(state: State) -> list[int]:
    figures = [state.issued, state.redeemed, state.supply]
    for bank in state.balances:
        p = state.position(bank)
        figures += [p.balance, p.queued_outgoing, p.queued_incoming, p.net]
    return figures


def assert_within_int64(state: State) -> None:
    for bank in state.balances:
        p = state.position(bank)
        # What a client is served: assigning an out-of-range value raises ValueError.
        common_pb.Account(
            id=bank,
            balance=p.balance,
            queued_in=p.queued_incoming,
            queued_out=p.queued_outgoing,
            position=p.net,
        )
    outside = [s for s in sums_of(state) if not INT64_MIN <= s <= INT64_MAX]
    assert not outside, f"sums outside int64: {outside}"


def test_a_second_queued_transfer_of_int64_max_from_one_bank_is_refused_as_overflow(
    chain: Chain,
) -> None:
    first = chain.commit(chain.transfer("bank-a", "bank-b", INT64_MAX))
    second = chain.commit(chain.transfer("bank-a", "bank-c", INT64_MAX))

    assert first.receipts[0].outcome == QUEUED
    assert (second.receipts[0].outcome, second.receipts[0].reason) == (REJECTED, "overflow")
    assert "queued-out" in second.receipts[0].detail
    assert_within_int64(chain.state)
    assert chain.state.position("bank-a").queued_outgoing == INT64_MAX


def test_two_payers_queueing_int64_max_towards_one_bank_are_refused_the_second_time(
    chain: Chain,
) -> None:
    chain.commit(chain.transfer("bank-a", "bank-c", INT64_MAX))
    refused = chain.commit(chain.transfer("bank-b", "bank-c", 1))

    assert (refused.receipts[0].outcome, refused.receipts[0].reason) == (REJECTED, "overflow")
    assert_within_int64(chain.state)


def test_an_issue_or_payment_to_a_bank_with_int64_max_queued_towards_it_is_refused(
    chain: Chain,
) -> None:
    chain.commit(chain.issue("bank-b", 50))
    chain.commit(chain.transfer("bank-a", "bank-c", INT64_MAX - 10))

    issue = chain.commit(chain.issue("bank-c", 11))
    payment = chain.commit(chain.transfer("bank-b", "bank-c", 11))
    fits = chain.commit(chain.transfer("bank-b", "bank-c", 10))

    assert [r.reason for r in (*issue.receipts, *payment.receipts)] == ["overflow", "overflow"]
    assert fits.receipts[0].outcome == receipt_pb.OUTCOME_SETTLED
    assert chain.state.position("bank-c").net == INT64_MAX
    assert_within_int64(chain.state)


def test_overflow_leaves_the_call_as_out_of_range() -> None:
    assert status_code_of(AmountOverflowError("x")) == grpc.StatusCode.OUT_OF_RANGE


huge = st.one_of(
    st.integers(min_value=1, max_value=1000),
    st.integers(min_value=INT64_MAX - 1000, max_value=INT64_MAX),
    st.integers(min_value=2**61, max_value=2**62),
)
banks = st.sampled_from(BANKS)
operation = st.one_of(
    st.tuples(st.just("issue"), banks, banks, huge, st.booleans()),
    st.tuples(st.just("transfer"), banks, banks, huge, st.booleans()),
    st.tuples(st.just("cancel"), banks, banks, st.integers(0, 20), st.booleans()),
    st.tuples(st.just("redeem"), banks, banks, huge, st.booleans()),
)


def _bound_broken(state: State, op: tuple) -> bool:
    """Whether ``op`` on ``state`` would take a sum past int64 (the refusal is justified)."""
    kind, payer, payee, amount, _ = op
    if kind == "issue":
        p = state.position(payer)
        return state.issued + amount > INT64_MAX or p.balance + p.queued_incoming + amount > (
            INT64_MAX
        )
    out, into = state.position(payer), state.position(payee)
    return (
        out.queued_outgoing + amount > INT64_MAX
        or into.balance + into.queued_incoming + amount > INT64_MAX
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=14))
def test_no_sequence_of_issues_transfers_and_cancels_takes_a_sum_past_int64(ops) -> None:
    chain = Chain()
    transfers = []
    for op in ops:
        kind, payer, payee, amount, queue_always = op
        if kind == "issue":
            tx = chain.issue(payer, amount)
        elif kind == "redeem":
            tx = chain.redeem(payer, amount)
        elif kind == "transfer":
            tx = chain.transfer(payer, payee, amount, queue_always=queue_always)
            transfers.append(tx)
        elif transfers:
            tx = chain.cancel(payer, transfers[amount % len(transfers)])
        else:
            continue
        before = chain.state
        receipt = chain.commit(tx).receipts[0]
        assert_within_int64(chain.state)
        if receipt.reason == "overflow":
            assert _bound_broken(before, op), (op, receipt.detail)
            assert chain.state.balances == before.balances
            assert chain.state.queues == before.queues
        elif kind == "transfer" and payer != payee:
            assert not _bound_broken(before, op) or receipt.outcome == REJECTED, op
