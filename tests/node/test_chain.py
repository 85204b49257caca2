"""The validator's chain: a proposal names what can never be in a block, so the mempool can
let it go, and a block with a quorum of seals is applied without checking its signatures
again while a proposal carrying forged seals is refused; listeners hear of a commit
only once the block is stored and the head has moved."""

from __future__ import annotations

import pytest

from ledger import block as blocks
from ledger.chain import Chain
from ledger.consensus import BuildProposal
from ledger.errors import QuorumError
from ledger.execute import InlineCheck
from ledger.state import State
from ledger.store import MemoryStore
from tests.ledger.conftest import VALIDATORS, key
from tests.ledger.conftest import Chain as Signer


def request(chain: Chain) -> BuildProposal:
    head = chain.head()
    return BuildProposal(head.height + 1, 0, "validator-1", head.hash)


def sealed(block: blocks.Block, validators: tuple[str, ...]) -> blocks.Block:
    return block.with_seals(
        [blocks.make_seal(block.chain_id, block.hash, v, key(v)) for v in validators]
    )


@pytest.fixture
def parts() -> tuple[Chain, Signer]:
    signer = Signer()
    return Chain(MemoryStore(), State.genesis(signer.genesis), InlineCheck()), signer


def test_a_transaction_already_committed_is_left_out_and_named(parts) -> None:  # type: ignore[no-untyped-def]
    chain, signer = parts
    issue = signer.issue("bank-a", 500)
    block = chain.build(request(chain), [issue], now_ms=signer.genesis.genesis_time_ms + 1)
    chain.commit(sealed(block, VALIDATORS[:3]))

    # The same transaction reached the mempool again just after its block committed.
    late, dropped = chain.build_proposal(
        request(chain), [issue], now_ms=signer.genesis.genesis_time_ms + 2
    )
    assert late.transactions == ()
    assert dropped == [issue], "the proposer must say what to drop from the mempool"


def test_a_sealed_block_is_applied_and_forged_seals_are_refused(parts) -> None:  # type: ignore[no-untyped-def]
    chain, signer = parts
    other = Chain(MemoryStore(), State.genesis(signer.genesis), InlineCheck())
    block = other.build(
        request(other), [signer.issue("bank-b", 7)], now_ms=signer.genesis.genesis_time_ms + 1
    )
    forged = block.with_seals([blocks.Seal(v, bytes(64)) for v in VALIDATORS])
    with pytest.raises(QuorumError):
        chain.validate(forged)
    chain.validate(sealed(block, VALIDATORS[1:]))
    chain.commit(sealed(block, VALIDATORS[1:]))
    assert chain.state.balances["bank-b"] == 7


def test_listeners_hear_of_a_commit_once_the_block_is_stored_and_the_head_moved() -> None:
    signer = Signer()
    store = MemoryStore()
    chain = Chain(store, State.genesis(signer.genesis), InlineCheck())
    heard: list[tuple[str, int, int, bool]] = []

    def listener(name: str):  # type: ignore[no-untyped-def]
        def hear(block, execution) -> None:  # type: ignore[no-untyped-def]
            stored = store.block(block.height) == block
            heard.append((name, block.height, chain.head().height, stored))
            assert execution.state is chain.state

        return hear

    chain.add_listener(listener("mempool"))
    chain.add_listener(listener("feed"))
    block = chain.build(
        request(chain), [signer.issue("bank-a", 5)], now_ms=signer.genesis.genesis_time_ms + 1
    )
    chain.commit(sealed(block, VALIDATORS[:3]))
    assert heard == [("mempool", 1, 1, True), ("feed", 1, 1, True)]
