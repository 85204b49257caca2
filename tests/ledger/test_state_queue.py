"""The RTGS queue: priority then arrival, settlement as soon as funds allow, payer-only control."""

from __future__ import annotations

from straits.ledger.v1 import receipt_pb2 as receipt_pb

from ledger.state import NORMAL, URGENT
from tests.ledger.conftest import Chain

SETTLED = receipt_pb.OUTCOME_SETTLED
QUEUED = receipt_pb.OUTCOME_QUEUED
APPLIED = receipt_pb.OUTCOME_APPLIED
REJECTED = receipt_pb.OUTCOME_REJECTED
CANCELLED = receipt_pb.OUTCOME_CANCELLED


def settled_ids(execution) -> list[bytes]:
    return [s.transfer_id for s in execution.settlements if s.outcome == SETTLED]


def queue_of(chain: Chain, payer: str) -> list[bytes]:
    queue = chain.state.queues.get(payer)
    return [entry.transfer_id for entry in queue] if queue else []


def test_queued_transfers_settle_when_funds_arrive_urgent_first_then_by_arrival():
    chain = Chain()
    n1 = chain.transfer("bank-a", "bank-b", 100, NORMAL)
    n2 = chain.transfer("bank-a", "bank-c", 100, NORMAL)
    u1 = chain.transfer("bank-a", "bank-b", 100, URGENT)
    chain.commit(n1, n2, u1)
    assert queue_of(chain, "bank-a") == [u1.id, n1.id, n2.id]
    execution = chain.commit(chain.issue("bank-a", 200))
    assert settled_ids(execution) == [u1.id, n1.id], "urgent first, then the earlier normal"
    assert queue_of(chain, "bank-a") == [n2.id]
    assert chain.state.balances["bank-a"] == 0


def test_a_blocked_head_is_not_overtaken_by_a_smaller_entry_behind_it():
    chain = Chain()
    big = chain.transfer("bank-a", "bank-b", 500)
    small = chain.transfer("bank-a", "bank-b", 10)
    chain.commit(big, small)
    execution = chain.commit(chain.issue("bank-a", 100))
    assert settled_ids(execution) == [], "strict order: the 10 must wait behind the 500"
    assert queue_of(chain, "bank-a") == [big.id, small.id]


def test_a_new_transfer_waits_behind_an_equal_priority_one_but_urgent_overtakes_normal():
    chain = Chain()
    chain.commit(chain.issue("bank-a", 100))
    waiting = chain.transfer("bank-a", "bank-b", 500, NORMAL)
    chain.commit(waiting)
    behind = chain.transfer("bank-a", "bank-b", 10, NORMAL)
    urgent = chain.transfer("bank-a", "bank-c", 10, URGENT)
    execution = chain.commit(behind, urgent)
    assert [r.outcome for r in execution.receipts] == [QUEUED, SETTLED]
    assert queue_of(chain, "bank-a") == [waiting.id, behind.id]


def test_queue_always_enters_the_queue_and_settles_in_the_end_of_block_pass():
    chain = Chain()
    chain.commit(chain.issue("bank-a", 100))
    transfer = chain.transfer("bank-a", "bank-b", 40, queue_always=True)
    execution = chain.commit(transfer)
    assert execution.receipts[0].outcome == QUEUED
    assert settled_ids(execution) == [transfer.id]
    assert chain.state.balances["bank-b"] == 40


def test_held_entries_are_skipped_not_blocking_and_settle_once_released():
    chain = Chain()
    held = chain.transfer("bank-a", "bank-b", 50)
    free = chain.transfer("bank-a", "bank-c", 50)
    chain.commit(held, free)
    chain.commit(chain.hold("bank-a", held))
    assert chain.state.queued(held.id).held
    execution = chain.commit(chain.issue("bank-a", 60))
    assert settled_ids(execution) == [free.id], "the held head must be skipped"
    execution = chain.commit(chain.issue("bank-a", 40), chain.release("bank-a", held))
    assert settled_ids(execution) == [held.id]
    assert chain.state.queues.get("bank-a") is None


def test_entries_to_a_suspended_payee_are_skipped_and_wait_for_unsuspension():
    chain = Chain()
    to_b = chain.transfer("bank-a", "bank-b", 50)
    to_c = chain.transfer("bank-a", "bank-c", 50)
    chain.commit(to_b, to_c)
    chain.commit(chain.suspend("bank-b"))
    execution = chain.commit(chain.issue("bank-a", 100))
    assert settled_ids(execution) == [to_c.id]
    execution = chain.commit(chain.unsuspend("bank-b"))
    assert settled_ids(execution) == [to_b.id], "unsuspension must wake entries that pay it"


def test_a_suspended_payers_queue_stays_queued_until_unsuspended():
    chain = Chain()
    transfer = chain.transfer("bank-a", "bank-b", 50)
    chain.commit(transfer)
    # Funds arrive and the payer is suspended in the same block, before the queue pass.
    execution = chain.commit(chain.issue("bank-a", 100), chain.suspend("bank-a"))
    assert not settled_ids(execution) and chain.state.queued(transfer.id) is not None
    execution = chain.commit(chain.unsuspend("bank-a"))
    assert settled_ids(execution) == [transfer.id]


def test_payer_cancels_a_queued_transfer_and_it_is_reported_cancelled():
    chain = Chain()
    transfer = chain.transfer("bank-a", "bank-b", 50)
    chain.commit(transfer)
    execution = chain.commit(chain.cancel("bank-a", transfer))
    assert execution.receipts[0].outcome == APPLIED
    assert [(s.transfer_id, s.outcome) for s in execution.settlements] == [(transfer.id, CANCELLED)]
    assert chain.state.queued(transfer.id) is None
    execution = chain.commit(chain.cancel("bank-a", transfer))
    assert execution.receipts[0].reason == "not_queued"


def test_only_the_payer_touches_its_queue():
    chain = Chain()
    transfer = chain.transfer("bank-a", "bank-b", 50)
    chain.commit(transfer)
    before = chain.state.queues
    for operation in (chain.cancel, chain.hold, chain.release):
        receipt = chain.commit(operation("bank-b", transfer)).receipts[0]
        assert (receipt.outcome, receipt.reason) == (REJECTED, "not_permitted"), operation.__name__
    receipt = chain.commit(chain.reprioritise("bank-b", transfer, URGENT)).receipts[0]
    assert receipt.reason == "not_permitted"
    assert chain.state.queues == before


def test_reprioritised_entry_joins_the_back_of_its_new_class():
    chain = Chain()
    u1 = chain.transfer("bank-a", "bank-b", 10, URGENT)
    n1 = chain.transfer("bank-a", "bank-b", 10, NORMAL)
    n2 = chain.transfer("bank-a", "bank-b", 10, NORMAL)
    chain.commit(u1, n1, n2)
    chain.commit(chain.reprioritise("bank-a", n2, URGENT))
    assert queue_of(chain, "bank-a") == [u1.id, n2.id, n1.id]
    execution = chain.commit(chain.issue("bank-a", 20))
    assert settled_ids(execution) == [u1.id, n2.id]


def test_settled_funds_cascade_through_queues_in_the_same_block():
    chain = Chain()
    b_to_c = chain.transfer("bank-b", "bank-c", 70)
    a_to_b = chain.transfer("bank-a", "bank-b", 70)
    chain.commit(b_to_c, a_to_b)
    execution = chain.commit(chain.issue("bank-a", 70))
    assert settled_ids(execution) == [a_to_b.id, b_to_c.id]
    assert chain.state.balances["bank-c"] == 70
    assert chain.state.position("bank-a").queued_outgoing == 0


def test_position_counts_what_waits_both_ways():
    chain = Chain()
    chain.commit(
        chain.issue("bank-a", 5),
        chain.transfer("bank-a", "bank-b", 30),
        chain.transfer("bank-c", "bank-a", 12),
    )
    position = chain.state.position("bank-a")
    assert (position.balance, position.queued_outgoing, position.queued_incoming) == (5, 30, 12)
    assert position.net == 5 - 30 + 12
