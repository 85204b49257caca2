"""Gridlock resolved on a chain: the textbook cases, block by block, through the proposer
and the validator paths, plus random histories (holds, suspensions, priorities, limits,
closes of the day) where after every block: money is conserved and no balance negative;
no queued transfer settles while an eligible one ahead of it in its payer's queue waits;
nothing that could settle together is left waiting (checked by brute force); no limit
is exceeded; a rejected transaction changes nothing; the memory and SQLite stores give
the same state root; and at the end, liquidity releases every eligible queue."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from straits.ledger.v1 import receipt_pb2 as receipt_pb

from clients.bench.lsm_reference import best_prefixes
from ledger.lsm import OffsettingRun, largest_offsetting_set
from ledger.state import NORMAL, URGENT, State
from ledger.store import MemoryStore, SqliteStore
from tests.ledger.conftest import BANKS, Chain
from tests.ledger.test_properties import (
    check_money,
    check_rejections_change_nothing,
    check_settlement_order,
    operation,
    sign_operations,
)

# The ledger's random operations plus sender limits and the close of the day, with
# more money and more normal payments than there, so that limits often bind.
banks = st.sampled_from(BANKS)
lsm_operation = st.one_of(
    operation,
    st.tuples(st.just("issue"), banks, st.integers(min_value=100, max_value=1_000)),
    st.tuples(
        st.just("transfer"),
        banks,
        banks,
        st.integers(min_value=1, max_value=200),
        st.just(NORMAL),
        st.booleans(),
    ),
    st.tuples(
        st.just("limit"),
        banks,
        st.sampled_from(["", *BANKS]),
        st.none() | st.integers(min_value=0, max_value=100),
    ),
    st.tuples(st.just("close")),
)
lsm_histories = st.lists(st.lists(lsm_operation, min_size=2, max_size=12), min_size=2, max_size=6)

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
    assert execution.offsetting == OffsettingRun(considered=3, released=3, released_value=210)
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


def sign_lsm_operations(chain: Chain, operations, transfers: list) -> list:
    signed = []
    for op in operations:
        if op[0] == "limit":
            _, bank, counterparty, amount = op
            if counterparty != bank:
                signed.append(
                    chain.set_limit(bank, amount or 0, counterparty, remove=amount is None)
                )
        elif op[0] == "close":
            signed.append(chain.close_day())
        else:
            signed += sign_operations(chain, [op], transfers)
    return signed


def limits_and_positions(state: State) -> tuple[dict, dict]:
    limits = {bank: day.limits for bank, day in state.days.items()}
    positions = {(b, q): v for b, day in state.days.items() for q, v in day.positions.items()}
    return limits, positions


def check_nothing_left_to_offset(state: State) -> None:
    """At the end of a block no nonempty set of eligible prefixes could settle together."""
    eligible = {
        payer: [e for e in queue if not e.held and not state.participants[e.payee].suspended]
        for payer, queue in state.queues.items()
        if not state.participants[payer].suspended
    }
    eligible = {p: entries[:3] for p, entries in eligible.items() if entries}
    limits, positions = limits_and_positions(state)
    chosen = largest_offsetting_set(state.balances, eligible, limits, positions)
    assert all(n == 0 for n in chosen.values())
    feasible = best_prefixes(state.balances, eligible, limits, positions)
    assert all(all(n == 0 for n in choice.values()) for choice in feasible), feasible


def check_limits_kept(state: State, block, execution, transfers: dict) -> None:
    """A bank that sent a NORMAL transfer in the block, and neither changed its limits nor
    saw the day close in it, ends the block within its limits."""
    if any(t.kind == "close_day" for t in block.transactions):
        return
    changed = {t.signer for t in block.transactions if t.kind == "set_limit"}
    settled = [
        t.id
        for t, r in zip(block.transactions, execution.receipts, strict=True)
        if r.outcome == SETTLED
    ] + [s.transfer_id for s in execution.settlements if s.outcome == SETTLED]
    for transfer_id in settled:
        t = transfers[transfer_id]
        payer, payee = t.signer, t.body.transfer.payee
        day = state.days.get(payer)
        if t.body.transfer.priority == URGENT or payer in changed or day is None:
            continue
        limits = day.limits
        if payee in limits.bilateral:
            assert day.positions.get(payee, 0) <= limits.bilateral[payee]
        elif limits.multilateral is not None:
            others = sum(v for q, v in day.positions.items() if q not in limits.bilateral)
            assert others <= limits.multilateral, (payer, dict(day.positions), limits)


@settings(
    max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(lsm_histories)
def test_after_every_block_nothing_that_could_settle_together_waits(history):
    chain = Chain()
    memory = MemoryStore()
    transfers: list = []
    by_id: dict = {}
    with tempfile.TemporaryDirectory() as scratch:
        sqlite = SqliteStore(Path(scratch) / "ledger.db")
        for operations in history:
            before = chain.state
            execution = chain.commit(*sign_lsm_operations(chain, operations, transfers))
            by_id.update((t.id, t) for t in chain.blocks[-1].transactions)
            check_money(before, chain.state)
            check_nothing_left_to_offset(chain.state)
            check_limits_kept(chain.state, chain.blocks[-1], execution, by_id)
            check_rejections_change_nothing(before, chain.blocks[-1], execution)
            check_settlement_order(before, chain.blocks[-1], execution)
            for settlement in execution.settlements:
                if settlement.by_offsetting:
                    assert settlement.outcome == SETTLED
            memory.commit(chain.blocks[-1], execution)
            sqlite.commit(chain.blocks[-1], execution)
            assert memory.load_state().root() == sqlite.load_state().root() == chain.state.root()
            for settlement in execution.settlements:
                assert sqlite.transaction(settlement.transfer_id).settlement == settlement
        sqlite.close()
    check_liquidity_releases_every_eligible_queue(chain)


def check_liquidity_releases_every_eligible_queue(chain: Chain) -> None:
    """Whatever gridlock a history left, once limits are lifted and every active bank
    holds what it owes, every eligible queued transfer settles in that block."""
    state = chain.state
    lift = [
        chain.set_limit(bank, counterparty=counterparty, remove=True)
        for bank, day in state.days.items()
        for counterparty in ["", *day.limits.bilateral]
    ]
    owed = {
        payer: sum(e.amount for e in queue)
        for payer, queue in state.queues.items()
        if not state.participants[payer].suspended
    }
    chain.commit(*lift, *(chain.issue(payer, amount) for payer, amount in owed.items()))
    state = chain.state
    for payer, queue in state.queues.items():
        if state.participants[payer].suspended:
            continue
        waiting = [e for e in queue if not e.held and not state.participants[e.payee].suspended]
        assert not waiting, f"{payer} still holds eligible entries after liquidity arrived"
