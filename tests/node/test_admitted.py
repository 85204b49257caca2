"""Each signature checked once: a proposal that carries transactions this validator
admitted reuses their decoded values and admission's verdicts, and everything else in
it (a transaction never admitted, the same body with another signature) is decoded and
checked afresh, so a forged signature is still refused."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import pytest

from ledger import block as blocks
from ledger.chain import Chain
from ledger.consensus import BuildProposal
from ledger.errors import InvalidBlockError
from ledger.execute import AlreadyVerified, InlineCheck, execute
from ledger.keys import PublicKey
from ledger.state import State
from ledger.store import MemoryStore
from ledger.transaction import Transaction
from services.validator.admission import Admitter
from services.validator.admitted import AdmittedFirst
from services.validator.mempool import Mempool
from tests.ledger.conftest import Chain as Signer


class CountingCheck(InlineCheck):
    """The real inline check, counting what it was asked to verify."""

    def __init__(self) -> None:
        self.asked: list[bytes] = []

    def verify_transactions(
        self, transactions: Sequence[Transaction], key_of: Callable[[str], PublicKey | None]
    ) -> list[bool]:
        self.asked.extend(t.id for t in transactions)
        return super().verify_transactions(transactions, key_of)


class Validator:
    """A validator's admission, mempool and chain, wired as the node wires them."""

    def __init__(self, signer: Signer) -> None:
        self.verifier = CountingCheck()
        self.mempool = Mempool(100)
        self.signatures = AdmittedFirst(self.mempool, self.verifier)
        self.chain = Chain(MemoryStore(), State.genesis(signer.genesis), self.signatures)
        self.admitter = Admitter(self.chain, self.mempool, self.verifier, lambda *_: None)

    def admit(self, *transactions: Transaction) -> None:
        self.admitter.admit([t.to_proto() for t in transactions], sender=None, check_rules=False)

    def receive(self, block: blocks.Block) -> blocks.Block:
        """The proposal as it arrives: bytes, decoded with the mempool lending what it holds."""
        data = block.encode()
        return blocks.Block.decode(data, chain_id=block.chain_id, known=self.mempool.known)


def proposal(signer: Signer, transactions: list[Transaction]) -> blocks.Block:
    proposer = Chain(MemoryStore(), State.genesis(signer.genesis), InlineCheck())
    head = proposer.head()
    request = BuildProposal(height=1, round=0, parent_hash=head.hash, proposer="validator-1")
    return proposer.build(request, transactions, now_ms=signer.genesis.genesis_time_ms + 1)


@pytest.fixture
def signer() -> Signer:
    return Signer()


def test_a_proposal_of_admitted_transactions_is_neither_decoded_nor_verified_again(
    signer: Signer,
) -> None:
    validator = Validator(signer)
    issues = [signer.issue(bank, 100) for bank in ("bank-a", "bank-b", "bank-c")]
    validator.admit(*issues)
    assert validator.verifier.asked == [t.id for t in issues], "admission checks each once"

    block = validator.receive(proposal(signer, issues))
    pooled = [validator.mempool.get(t.id) for t in issues]
    assert all(got is pool for got, pool in zip(block.transactions, pooled, strict=True)), (
        "the decoded block holds the mempool's own values"
    )
    validator.chain.validate(block)

    assert validator.verifier.asked == [t.id for t in issues], "no signature checked twice"
    assert validator.signatures.reused == 3


def test_what_was_not_admitted_is_decoded_and_checked_in_the_block(signer: Signer) -> None:
    validator = Validator(signer)
    admitted, unseen = signer.issue("bank-a", 100), signer.issue("bank-b", 50)
    validator.admit(admitted)

    block = validator.receive(proposal(signer, [admitted, unseen]))
    validator.chain.validate(block)

    assert validator.verifier.asked == [admitted.id, unseen.id]
    assert (validator.signatures.reused, validator.signatures.verified) == (1, 1)


def test_an_admitted_body_under_a_forged_signature_is_refused(signer: Signer) -> None:
    validator = Validator(signer)
    honest = signer.issue("bank-a", 100)
    validator.admit(honest)
    forged = dataclasses.replace(honest, signature=bytes(64))

    block = validator.receive(proposal_unchecked(signer, [forged]))

    assert block.transactions[0] is not validator.mempool.get(honest.id)
    with pytest.raises(InvalidBlockError, match="inadmissible"):
        validator.chain.validate(block)


def test_a_verdict_is_reused_only_for_the_key_it_was_checked_against(signer: Signer) -> None:
    mempool = Mempool(10)
    tx = signer.issue("bank-a", 1)
    key = signer.state.participants[tx.signer].key
    other = signer.state.participants["bank-a"].key
    mempool.add([tx], [key])

    assert mempool.checked(tx, key)
    assert not mempool.checked(tx, other), "another key: check again"
    assert not mempool.checked(tx, None)
    copy = dataclasses.replace(tx)
    assert not mempool.checked(copy, key), "an equal value is not the checked one"
    unkeyed = signer.issue("bank-a", 2)
    mempool.add([unkeyed])
    assert not mempool.checked(unkeyed, key), "added without its key: never taken as checked"


def test_the_mempool_lends_a_transaction_only_while_it_holds_it(signer: Signer) -> None:
    mempool = Mempool(10)
    tx = signer.issue("bank-a", 1)
    mempool.add([tx], [signer.state.participants[tx.signer].key])

    assert mempool.known(tx.body_bytes, tx.signature) is tx
    assert mempool.known(tx.body_bytes, bytes(64)) is None
    mempool.remove([tx.id])
    assert mempool.known(tx.body_bytes, tx.signature) is None
    assert not mempool.checked(tx, signer.state.participants[tx.signer].key)


def proposal_unchecked(signer: Signer, transactions: list[Transaction]) -> blocks.Block:
    """A block a faulty proposer built without checking signatures."""
    state = State.genesis(signer.genesis)
    execution = execute(state, transactions, verify=AlreadyVerified(), strict=False)
    return blocks.build(
        chain_id=state.chain_id, height=1, parent_hash=state.head_hash,
        timestamp_ms=signer.genesis.genesis_time_ms + 1, proposer="validator-1", round=0,
        transactions=execution.transactions, state_root=execution.state_root,
        receipts_root=execution.receipts_root,
    )
