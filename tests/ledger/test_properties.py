"""Invariants of the ledger over random sequences of blocks (Hypothesis).

Each example is a few blocks of random operations by three banks and the central bank:
issues, redeems, transfers of both priorities (some forced into the queue), queue
operations by the payer or by someone else, suspensions. After every block:

* supply = issued - redeemed = the sum of all balances, and no balance is negative;
* the block moved money only through issues and redeems (transfers and queue
  settlements neither create nor destroy it);
* every queue is in priority then arrival order, and no payer's first eligible entry
  could have been covered (it would have settled);
* no transfer settled from a queue while an eligible entry ahead of it still waits;
* dropping the block's REJECTED transactions leaves the same balances, queues and
  participants: a rejection changes nothing;
* the incremental state hash equals one rebuilt from scratch; a second machine
  applying the same blocks, a MemoryStore and a reopened SqliteStore all give the
  block's state root;
* every transaction of the block, sent again, is refused as a replay.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from straits.ledger.v1 import receipt_pb2 as receipt_pb

from ledger.errors import ReplayError
from ledger.execute import InlineCheck, apply_block, execute
from ledger.state import NORMAL, URGENT, State
from ledger.store import MemoryStore, SqliteStore
from tests.ledger.conftest import BANKS, Chain

banks = st.sampled_from(BANKS)
amounts = st.integers(min_value=1, max_value=400)
operation = st.one_of(
    st.tuples(st.just("issue"), banks, st.integers(min_value=1, max_value=300)),
    st.tuples(st.just("redeem"), banks, amounts),
    st.tuples(
        st.just("transfer"), banks, banks, amounts, st.sampled_from([URGENT, NORMAL]), st.booleans()
    ),
    st.tuples(
        st.sampled_from(["cancel", "hold", "release", "reprioritise"]),
        banks,
        st.integers(min_value=0, max_value=50),
        st.sampled_from([URGENT, NORMAL]),
    ),
    st.tuples(st.sampled_from(["suspend", "unsuspend"]), banks),
)
histories = st.lists(st.lists(operation, max_size=10), min_size=1, max_size=6)


def sign_operations(chain: Chain, operations, transfers: list):
    signed = []
    for op in operations:
        kind = op[0]
        if kind == "issue":
            signed.append(chain.issue(op[1], op[2]))
        elif kind == "redeem":
            signed.append(chain.redeem(op[1], op[2]))
        elif kind == "transfer":
            transfer = chain.transfer(op[1], op[2], op[3], op[4], queue_always=op[5])
            transfers.append(transfer)
            signed.append(transfer)
        elif kind in ("suspend", "unsuspend"):
            signed.append(getattr(chain, kind)(op[1]))
        elif transfers:
            target = transfers[op[2] % len(transfers)]
            if kind == "reprioritise":
                signed.append(chain.reprioritise(op[1], target, op[3]))
            else:
                signed.append(getattr(chain, kind)(op[1], target))
    return signed


def check_money(before: State, after: State) -> None:
    assert after.supply == after.issued - after.redeemed == sum(after.balances.values())
    assert all(balance >= 0 for balance in after.balances.values()), dict(after.balances)
    minted = (after.issued - before.issued) - (after.redeemed - before.redeemed)
    moved = sum(after.balances.values()) - sum(before.balances.values())
    assert moved == minted, "transfers or settlements created or destroyed money"


def check_queues(state: State) -> None:
    for payer, queue in state.queues.items():
        assert all(e.priority == URGENT for e in queue.urgent.values())
        assert all(e.priority == NORMAL for e in queue.normal.values())
        for entries in (queue.urgent, queue.normal):
            seqs = [e.seq for e in entries.values()]
            assert seqs == sorted(seqs), f"{payer}'s queue is out of arrival order"
        if state.participants[payer].suspended:
            continue
        eligible = [e for e in queue if not e.held and not state.participants[e.payee].suspended]
        if eligible:
            assert eligible[0].amount > state.balances[payer], (
                f"{payer} could cover its first eligible entry, yet it waits"
            )


def check_settlement_order(before: State, block, execution) -> None:
    """No entry still waiting, and eligible, was ahead of one that settled from its queue."""
    after = execution.state
    reprioritised = {
        t.body.reprioritise.transfer_id for t in block.transactions if t.kind == "reprioritise"
    }
    for settlement in execution.settlements:
        settled = before.queued(settlement.transfer_id)
        if (
            settlement.outcome != receipt_pb.OUTCOME_SETTLED
            or settled is None
            or settled.transfer_id in reprioritised
        ):
            continue
        for waiting in after.queues.get(settled.payer, ()):
            if waiting.held or after.participants[waiting.payee].suspended:
                continue
            ahead, behind = waiting.transfer_id.hex()[:8], settled.transfer_id.hex()[:8]
            assert (waiting.priority, waiting.seq) > (settled.priority, settled.seq), (
                f"{ahead} still waits ahead of {behind}, which settled"
            )


def check_rejections_change_nothing(before: State, block, execution) -> None:
    kept = [
        t
        for t, r in zip(block.transactions, execution.receipts, strict=True)
        if r.outcome != receipt_pb.OUTCOME_REJECTED
    ]
    if len(kept) == len(block.transactions):
        return
    without = execute(before, kept, verify=InlineCheck(), strict=True).state
    after = execution.state
    assert dict(without.balances) == dict(after.balances)
    assert dict(without.participants) == dict(after.participants)
    assert {p: list(q) for p, q in without.queues.items()} == {
        p: list(q) for p, q in after.queues.items()
    }


@settings(
    max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(histories)
def test_ledger_invariants_hold_over_random_histories(history):
    chain = Chain()
    replica = Chain()
    memory = MemoryStore()
    transfers: list = []
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "ledger.db"
        sqlite = SqliteStore(path)
        for operations in history:
            before = chain.state
            execution = chain.commit(*sign_operations(chain, operations, transfers))
            block = chain.blocks[-1]
            state = chain.state
            check_money(before, state)
            check_queues(state)
            check_settlement_order(before, block, execution)
            check_rejections_change_nothing(before, block, execution)
            assert state.accumulator == state.recomputed_accumulator()
            replica.state = apply_block(replica.state, block, verify=InlineCheck()).state
            assert replica.state.root() == state.root() == block.header.state_root
            memory.commit(block, execution)
            sqlite.commit(block, execution)
            assert memory.load_state().root() == state.root()
            for transaction in block.transactions:
                again = execute(state, [transaction], verify=InlineCheck(), strict=False)
                assert isinstance(again.dropped[0][1], ReplayError)
        sqlite.close()
        reopened = SqliteStore(path)
        assert reopened.load_state().root() == chain.state.root()
        reopened.close()


queued_transfers = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=100), st.sampled_from([URGENT, NORMAL]), st.booleans()
    ),
    min_size=1,
    max_size=12,
)
fundings = st.lists(st.integers(min_value=1, max_value=150), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(queued_transfers, fundings)
def test_a_queue_settles_exactly_as_the_reference_walk_says(entries, funding):
    """Model: walk the queue by (priority, arrival), skip held entries, settle while the
    balance covers, stop at the first that it does not."""
    chain = Chain()
    transfers = [
        chain.transfer("bank-a", "bank-b", amount, priority) for amount, priority, _ in entries
    ]
    holds = [
        chain.hold("bank-a", t) for t, (_, _, held) in zip(transfers, entries, strict=True) if held
    ]
    chain.commit(*transfers, *holds)
    model = sorted(
        (priority, arrival, t.id, amount, held)
        for arrival, (t, (amount, priority, held)) in enumerate(
            zip(transfers, entries, strict=True)
        )
    )
    balance = 0
    for amount in funding:
        chain.commit(chain.issue("bank-a", amount))
        balance += amount
        waiting = []
        blocked = False
        for entry in model:
            if entry[4] or blocked or entry[3] > balance:
                blocked = blocked or (not entry[4] and entry[3] > balance)
                waiting.append(entry)
            else:
                balance -= entry[3]
        model = waiting
        queue = chain.state.queues.get("bank-a", ())
        assert [e.transfer_id for e in queue] == [entry[2] for entry in model]
        assert chain.state.balances["bank-a"] == balance
