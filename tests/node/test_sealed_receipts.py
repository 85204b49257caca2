"""What a block did is sealed in its header: a follower refuses a view whose receipts,
queue settlements or transactions are not the sealed ones, and ``apply_block`` refuses a
block whose receipts root is not what its transactions did.

The views here come from the validator's own ``block_view`` over blocks a real chain
executed and four validators sealed; each test then changes one thing a lying
validator could change.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from straits.ledger.v1 import receipt_pb2 as receipt_pb
from straits.validator.v1 import validator_pb2 as pb

from ledger import block as blocks
from ledger.errors import InvalidBlockError
from ledger.execute import InlineCheck, apply_block
from ledger.store import MemoryStore
from ledger.transaction import Transaction
from services.common.auth import BANK, CENTRAL_BANK, Caller
from services.participant.follower import FollowedBlock, check_view
from services.validator.commits import Committed
from services.validator.servicers import block_view
from tests.ledger.conftest import VALIDATORS, Chain, key

SETTLED = receipt_pb.OUTCOME_SETTLED
QUEUED = receipt_pb.OUTCOME_QUEUED
REJECTED = receipt_pb.OUTCOME_REJECTED


class Sealed:
    """A chain whose blocks are sealed by all four validators and kept in a store."""

    def __init__(self) -> None:
        self.chain = Chain()
        self.store = MemoryStore()
        self.committed: list[Committed] = []
        self.parents = [self.chain.state.head_hash]
        chain = self.chain
        self.paid = chain.transfer("bank-a", "bank-b", 300)
        self.queued = chain.transfer("bank-c", "bank-a", 200)

    def commit(self, *transactions: Transaction) -> Committed:
        execution = self.chain.commit(*transactions)
        block = self.chain.blocks[-1]
        block = block.with_seals(
            [blocks.make_seal(block.chain_id, block.hash, v, key(v)) for v in VALIDATORS]
        )
        self.store.commit(block, execution)
        entry = Committed(block, execution.receipts, execution.settlements)
        self.committed.append(entry)
        self.parents.append(block.hash)
        return entry

    def view(self, height: int, participant: str) -> pb.BlockView:
        role = CENTRAL_BANK if participant == "central-bank" else BANK
        caller = Caller(participant, role, participant)
        return block_view(self.committed[height - 1], caller, self.store)

    def check(
        self, view: pb.BlockView, height: int, *, whole: bool = False,
        own: Callable[[list[bytes]], set[bytes]] = lambda ids: set(),
    ) -> FollowedBlock:
        return check_view(
            view,
            chain_id=self.chain.genesis.chain_id,
            height=height,
            parent_hash=self.parents[height - 1],
            validators=self.chain.state.validators,
            whole=whole,
            own=own,
        )


@pytest.fixture
def sealed() -> Sealed:
    """Block 1 funds bank-a; block 2 settles bank-a's payment and queues bank-c's; block 3
    brings bank-c the money that settles its queued payment."""
    s = Sealed()
    chain = s.chain
    s.commit(chain.issue("bank-a", 1_000), chain.issue("bank-b", 400))
    s.commit(s.paid, s.queued)
    s.commit(chain.transfer("bank-b", "bank-c", 250))
    return s


def test_honest_views_pass_whole_and_redacted(sealed: Sealed) -> None:
    for height in (1, 2, 3):
        sealed.check(sealed.view(height, "central-bank"), height, whole=True)
        for bank in ("bank-a", "bank-b", "bank-c"):
            sealed.check(sealed.view(height, bank), height)
    followed = sealed.check(sealed.view(2, "bank-a"), 2)
    assert followed.receipts[sealed.paid.id].outcome == SETTLED


@pytest.mark.parametrize("participant", ["bank-a", "bank-b", "central-bank"])
def test_a_settled_payment_served_as_rejected_is_refused(sealed: Sealed, participant: str) -> None:
    view = sealed.view(2, participant)
    receipt = next(r for r in view.receipts if r.transaction_id == sealed.paid.id)
    receipt.outcome, receipt.reason = REJECTED, "insufficient_funds"

    with pytest.raises(InvalidBlockError, match="receipt"):
        sealed.check(view, 2, whole=participant == "central-bank")


def test_a_queued_payment_served_as_settled_is_refused(sealed: Sealed) -> None:
    view = sealed.view(2, "bank-c")
    view.receipts[0].outcome = SETTLED

    with pytest.raises(InvalidBlockError, match="receipt"):
        sealed.check(view, 2)


def test_a_forged_queue_settlement_is_refused(sealed: Sealed) -> None:
    # Block 2 queued bank-c's payment; a liar tells bank-a it settled there already.
    view = sealed.view(2, "bank-a")
    view.queue_settlements.add(transfer_id=sealed.queued.id, outcome=SETTLED)

    with pytest.raises(InvalidBlockError, match="queue settlement"):
        sealed.check(view, 2)


def test_a_settlement_served_as_cancelled_is_refused(sealed: Sealed) -> None:
    view = sealed.view(3, "bank-a")
    assert [s.outcome for s in view.queue_settlements] == [SETTLED]
    view.queue_settlements[0].outcome = receipt_pb.OUTCOME_CANCELLED

    with pytest.raises(InvalidBlockError, match="queue settlement"):
        sealed.check(view, 3)


def test_an_altered_amount_is_refused(sealed: Sealed) -> None:
    # The liar re-lists the ids so the carried transfer still "belongs" to the block.
    view = sealed.view(2, "bank-b")
    carried = view.block.transactions[0]
    forged = sealed.chain.transfer("bank-a", "bank-b", 3_000)
    carried.CopyFrom(forged.to_proto())
    view.transaction_ids[list(view.transaction_ids).index(sealed.paid.id)] = forged.id
    view.receipts[0].transaction_id = forged.id

    with pytest.raises(InvalidBlockError):
        sealed.check(view, 2)


def test_a_withheld_own_payment_is_refused(sealed: Sealed) -> None:
    # bank-a's node signed the payment; the liar drops it (and its receipt) from the view,
    # so without the check the node would leave it pending, then expire it and pay again.
    view = sealed.view(2, "bank-a")
    del view.block.transactions[:]
    del view.receipts[:]
    signed = {sealed.paid.id}

    with pytest.raises(InvalidBlockError, match="withheld"):
        sealed.check(view, 2, own=lambda ids: signed & set(ids))


def test_a_whole_view_missing_a_transaction_is_refused(sealed: Sealed) -> None:
    view = sealed.view(2, "central-bank")
    del view.block.transactions[1]
    del view.receipts[1]

    with pytest.raises(InvalidBlockError):
        sealed.check(view, 2, whole=True)


def test_a_redacted_view_served_to_the_central_bank_is_refused(sealed: Sealed) -> None:
    with pytest.raises(InvalidBlockError, match="redacted"):
        sealed.check(sealed.view(2, "bank-a"), 2, whole=True)


def test_apply_block_refuses_a_block_whose_receipts_root_is_not_what_it_did() -> None:
    chain = Chain()
    block, _ = chain.propose([chain.issue("bank-a", 10)])
    h = block.header
    forged = blocks.build(
        chain_id=h.chain_id, height=h.height, parent_hash=h.parent_hash,
        timestamp_ms=h.timestamp_ms, proposer=h.proposer, round=h.round,
        transactions=block.transactions, state_root=h.state_root,
        receipts_root=bytes(32),
    )

    with pytest.raises(InvalidBlockError, match="receipts root"):
        apply_block(chain.state, forged, verify=InlineCheck())
    assert apply_block(chain.state, block, verify=InlineCheck()).state.height == 1
