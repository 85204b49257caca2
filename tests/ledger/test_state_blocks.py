"""apply_block: a block is checked against the state before and after its execution."""

from __future__ import annotations

import pytest

from ledger import block as blocks
from ledger.errors import InvalidBlockError
from ledger.execute import InlineCheck, apply_block
from tests.ledger.conftest import Chain


def rebuilt(chain: Chain, block: blocks.Block, **changes) -> blocks.Block:
    fields = {
        "chain_id": block.header.chain_id,
        "height": block.header.height,
        "parent_hash": block.header.parent_hash,
        "timestamp_ms": block.header.timestamp_ms,
        "proposer": block.header.proposer,
        "round": block.header.round,
        "transactions": block.transactions,
        "state_root": block.header.state_root,
        "receipts_root": block.header.receipts_root,
    }
    fields.update(changes)
    return blocks.build(**fields)


@pytest.fixture
def proposed():
    chain = Chain()
    chain.commit(chain.issue("bank-a", 100))
    block, _ = chain.propose([chain.transfer("bank-a", "bank-b", 10)])
    return chain, block


def test_a_well_formed_block_applies_and_becomes_the_head(proposed):
    chain, block = proposed
    execution = apply_block(chain.state, block, verify=InlineCheck())
    assert execution.state.head_hash == block.hash and execution.state.height == 2
    assert execution.state.timestamp_ms == block.header.timestamp_ms


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("header.chain_id", {"chain_id": "other-chain"}),
        ("header.height", {"height": 3}),
        ("header.parent_hash", {"parent_hash": b"\x07" * 32}),
        ("header.timestamp_ms", {"timestamp_ms": 1}),
        ("header.proposer", {"proposer": "bank-a"}),
        ("header.state_root", {"state_root": b"\x00" * 32}),
    ],
)
def test_a_header_that_does_not_fit_the_state_is_refused_naming_the_field(proposed, field, change):
    chain, block = proposed
    before = chain.state
    with pytest.raises(InvalidBlockError) as raised:
        apply_block(chain.state, rebuilt(chain, block, **change), verify=InlineCheck())
    assert raised.value.field == field, str(raised.value)
    assert "expected" in raised.value.detail
    assert chain.state is before and chain.state.balances["bank-b"] == 0


def test_a_block_carrying_a_replayed_transaction_is_invalid():
    chain = Chain()
    issue = chain.issue("bank-a", 100)
    chain.commit(issue)
    block, _ = chain.propose([])
    forged = rebuilt(chain, block, transactions=(issue,))
    with pytest.raises(InvalidBlockError) as raised:
        apply_block(chain.state, forged, verify=InlineCheck())
    assert raised.value.field == "transactions[0]" and "replay" in str(raised.value)


def test_the_same_blocks_give_the_same_roots_on_a_second_machine():
    chain = Chain()
    chain.commit(chain.issue("bank-a", 100), chain.transfer("bank-a", "bank-c", 250))
    chain.commit(chain.issue("bank-a", 300), chain.redeem("bank-a", 20))
    other = Chain()
    for block in chain.blocks:
        other.state = apply_block(other.state, block, verify=InlineCheck()).state
    assert other.state.root() == chain.state.root() == chain.blocks[-1].header.state_root
    assert other.state.accumulator == other.state.recomputed_accumulator()
