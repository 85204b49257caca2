"""Gridlock resolved on a chain: the textbook cases, block by block, through the proposer
and the validator paths, plus random histories where after every block nothing that
could settle together is left waiting."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from straits.ledger.v1 import receipt_pb2 as receipt_pb

from ledger.lsm import largest_offsetting_set
from ledger.state import NORMAL, URGENT, State
from ledger.store import MemoryStore, SqliteStore
from tests.ledger.conftest import Chain
from tests.ledger.lsm_reference import best_prefixes
from tests.ledger.test_properties import check_money, histories, sign_operations

SETTLED = receipt_pb.OUTCOME_SETTLED
QUEUED = receipt_pb.OUTCOME_QUEUED


def offset_ids(execution) -> set[bytes]:
    return {
        s.transfer_id for s in execution.settlements if s.outcome == SETTLED and s.by_offsetting
    }


def queued_ids(chain: Chain) -> set[bytes]:
    return {e.transfer_id for q in chain.state.queues.values() for e in q}


def test_two_banks_owing_each_other_with_nothing_settle_both_in_one_block():
    chain = Chain()
    a_to_b = chain.transfer("bank-a", "bank-b", 100)
    b_to_a = chain.transfer("bank-b", "bank-a", 100)
    execution = chain.commit(a_to_b, b_to_a)
    assert [r.outcome for r in execution.receipts] == [QUEUED, QUEUED]
    assert offset_ids(execution) == {a_to_b.id, b_to_a.id}
    assert not chain.state.queues
    assert dict(chain.state.balances) == {"bank-a": 0, "bank-b": 0, "bank-c": 0}


def test_a_cycle_of_three_settles_at_once_and_the_receipts_say_by_offsetting():
    chain = Chain()
    cycle = [
        chain.transfer("bank-a", "bank-b", 70),
        chain.transfer("bank-b", "bank-c", 70),
        chain.transfer("bank-c", "bank-a", 70),
    ]
    chain.commit(*cycle[:2])
    assert queued_ids(chain) == {cycle[0].id, cycle[1].id}, "no cycle yet: both wait"
    execution = chain.commit(cycle[2])
    assert offset_ids(execution) == {t.id for t in cycle}
    assert all(s.by_offsetting for s in execution.settlements)
    assert not chain.state.queues


def test_a_cycle_that_needs_one_banks_partial_cover():
    chain = Chain()
    chain.commit(chain.issue("bank-a", 40))
    cycle = [
        chain.transfer("bank-a", "bank-b", 100),
        chain.transfer("bank-b", "bank-c", 100),
        chain.transfer("bank-c", "bank-a", 60),
    ]
    execution = chain.commit(*cycle)
    assert offset_ids(execution) == {t.id for t in cycle}
    assert dict(chain.state.balances) == {"bank-a": 0, "bank-b": 0, "bank-c": 40}


def test_without_enough_cover_the_run_changes_nothing_and_later_liquidity_releases_it():
    chain = Chain()
    chain.commit(chain.issue("bank-a", 39))
    cycle = [
        chain.transfer("bank-a", "bank-b", 100),
        chain.transfer("bank-b", "bank-c", 100),
        chain.transfer("bank-c", "bank-a", 60),
    ]
    before = chain.state
    execution = chain.commit(*cycle)
    assert not execution.settlements, "one unit short: nothing may settle"
    assert dict(chain.state.balances) == dict(before.balances)
    assert queued_ids(chain) == {t.id for t in cycle}
    execution = chain.commit(chain.issue("bank-a", 1))
    # A's 40 cannot pay its 100 alone; with C's 60 coming in it can, and B and C too.
    assert offset_ids(execution) == {t.id for t in cycle}
    assert not chain.state.queues


def test_a_head_of_queue_payment_blocks_a_cycle_until_it_is_reprioritised():
    chain = Chain()
    head = chain.transfer("bank-a", "bank-c", 500)
    to_b = chain.transfer("bank-a", "bank-b", 100)
    from_b = chain.transfer("bank-b", "bank-a", 100)
    execution = chain.commit(head, to_b, from_b)
    assert not execution.settlements, "A's 500 is first in its queue and nobody covers it"
    execution = chain.commit(chain.reprioritise("bank-a", to_b, URGENT))
    assert offset_ids(execution) == {to_b.id, from_b.id}
    assert queued_ids(chain) == {head.id}


def test_urgent_goes_first_in_the_offsetting_set():
    chain = Chain()
    normal = chain.transfer("bank-a", "bank-c", 100, NORMAL)
    chain.commit(normal)
    urgent = chain.transfer("bank-a", "bank-b", 100, URGENT)
    from_b = chain.transfer("bank-b", "bank-a", 100)
    execution = chain.commit(urgent, from_b)
    assert offset_ids(execution) == {urgent.id, from_b.id}
    assert queued_ids(chain) == {normal.id}, "the earlier normal one waits behind urgent"


def test_a_held_payment_is_skipped_and_does_not_block_the_cycle():
    chain = Chain()
    held = chain.transfer("bank-a", "bank-c", 500)
    chain.commit(held)
    chain.commit(chain.hold("bank-a", held))
    to_b = chain.transfer("bank-a", "bank-b", 100)
    from_b = chain.transfer("bank-b", "bank-a", 100)
    execution = chain.commit(to_b, from_b)
    assert offset_ids(execution) == {to_b.id, from_b.id}
    assert queued_ids(chain) == {held.id} and chain.state.queued(held.id).held


def test_a_suspended_payers_queue_does_not_move_and_payments_to_it_are_skipped():
    chain = Chain()
    a_to_b = chain.transfer("bank-a", "bank-b", 100)
    b_to_a = chain.transfer("bank-b", "bank-a", 100)
    b_to_c = chain.transfer("bank-b", "bank-c", 50)
    c_to_b = chain.transfer("bank-c", "bank-b", 50)
    # Both queue, then A is suspended before the end-of-block pass.
    execution = chain.commit(a_to_b, b_to_a, chain.suspend("bank-a"))
    assert not execution.settlements
    execution = chain.commit(b_to_c, c_to_b)
    assert offset_ids(execution) == {b_to_c.id, c_to_b.id}, "B's entry to A is skipped"
    assert queued_ids(chain) == {a_to_b.id, b_to_a.id}
    execution = chain.commit(chain.unsuspend("bank-a"))
    assert offset_ids(execution) == {a_to_b.id, b_to_a.id}


def check_nothing_left_to_offset(state: State) -> None:
    """At the end of a block no nonempty set of eligible prefixes could settle together."""
    eligible = {
        payer: [e for e in queue if not e.held and not state.participants[e.payee].suspended]
        for payer, queue in state.queues.items()
        if not state.participants[payer].suspended
    }
    eligible = {p: entries[:3] for p, entries in eligible.items() if entries}
    assert all(n == 0 for n in largest_offsetting_set(state.balances, eligible).values())
    feasible = best_prefixes(state.balances, eligible)
    assert all(all(n == 0 for n in choice.values()) for choice in feasible), feasible


@settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(histories)
def test_after_every_block_nothing_that_could_settle_together_waits(history):
    chain = Chain()
    memory = MemoryStore()
    transfers: list = []
    with tempfile.TemporaryDirectory() as scratch:
        sqlite = SqliteStore(Path(scratch) / "ledger.db")
        for operations in history:
            before = chain.state
            execution = chain.commit(*sign_operations(chain, operations, transfers))
            check_money(before, chain.state)
            check_nothing_left_to_offset(chain.state)
            for settlement in execution.settlements:
                if settlement.by_offsetting:
                    assert settlement.outcome == SETTLED
            memory.commit(chain.blocks[-1], execution)
            sqlite.commit(chain.blocks[-1], execution)
            assert memory.load_state().root() == sqlite.load_state().root() == chain.state.root()
            for settlement in execution.settlements:
                assert sqlite.transaction(settlement.transfer_id).settlement == settlement
        sqlite.close()
