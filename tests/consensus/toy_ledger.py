"""A small ledger for the simulated network: balances, supply and a validator schedule.

It stands in for ``ledger.state`` where a test needs nothing of the real rules:
issue adds to a bank and to the supply, a transfer moves money when the payer
can cover it (otherwise it changes nothing), a validator change takes effect
at its ``effective_height``. Signatures of transactions are not checked here.
Its ``ToyChain`` is what a simulated node stores: committed blocks and the
state after each, and it is the engine's ``Application``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ledger import block as blocks
from ledger import codec
from ledger.block import Block
from ledger.consensus import BuildProposal, ChainHead
from ledger.errors import InvalidBlockError, expected
from ledger.keys import PublicKey
from ledger.transaction import Transaction
from tests.consensus.keys import cached


@dataclass(frozen=True)
class ToyState:
    balances: tuple[tuple[str, int], ...]
    supply: int
    schedule: tuple[
        tuple[int, tuple[tuple[str, str], ...]], ...
    ]  # (from height, ((id, key text), ...))

    def validators_for(self, height: int) -> dict[str, PublicKey]:
        members = next(m for h, m in reversed(self.schedule) if h <= height)
        return {name: cached(PublicKey.from_text(text)) for name, text in members}

    def root(self) -> bytes:
        return codec.sha256(repr((self.balances, self.supply, self.schedule)).encode())

    def apply(self, block: Block) -> ToyState:
        balances = dict(self.balances)
        supply, schedule = self.supply, self.schedule
        for tx in block.transactions:
            kind = tx.kind
            if kind == "issue":
                balances[tx.body.issue.bank] = (
                    balances.get(tx.body.issue.bank, 0) + tx.body.issue.amount
                )
                supply += tx.body.issue.amount
            elif kind == "transfer":
                amount, payee = tx.body.transfer.amount, tx.body.transfer.payee
                if balances.get(tx.signer, 0) >= amount:
                    balances[tx.signer] -= amount
                    balances[payee] = balances.get(payee, 0) + amount
            elif kind == "change_validators":
                change = tx.body.change_validators
                if change.effective_height <= block.height:
                    raise InvalidBlockError(
                        expected("an effective height after the block", change.effective_height)
                    )
                members = tuple(
                    sorted((v.id, PublicKey.from_proto(v.key).to_text()) for v in change.validators)
                )
                schedule = (*schedule, (change.effective_height, members))
            else:
                raise InvalidBlockError(expected("issue, transfer or change_validators", kind))
        return replace(
            self, balances=tuple(sorted(balances.items())), supply=supply, schedule=schedule
        )


class ToyChain:
    """One node's stored chain; ``validate`` and ``head`` make it an engine ``Application``."""

    def __init__(self, chain_id: str, validators: Mapping[str, PublicKey]) -> None:
        self.chain_id = chain_id
        members = tuple(sorted((name, key.to_text()) for name, key in validators.items()))
        self.states = [ToyState(balances=(), supply=0, schedule=((1, members),))]
        self.blocks: list[Block] = []
        self.genesis_hash = codec.sha256(chain_id.encode())
        self.committed_ids: set[bytes] = set()

    @property
    def state(self) -> ToyState:
        return self.states[-1]

    def head(self) -> ChainHead:
        if not self.blocks:
            return ChainHead(0, self.genesis_hash, "")
        last = self.blocks[-1]
        return ChainHead(last.height, last.hash, last.header.proposer)

    def validators_for(self, height: int) -> dict[str, PublicKey]:
        return self.state.validators_for(height)

    def validate(self, block: Block) -> None:
        head = self.head()
        if block.height != head.height + 1 or block.header.parent_hash != head.hash:
            raise InvalidBlockError(expected(f"a child of block {head.height}", block.height))
        if any(tx.id in self.committed_ids for tx in block.transactions):
            raise InvalidBlockError("block repeats a committed transaction")
        if self.state.apply(block).root() != block.header.state_root:
            raise InvalidBlockError("state root differs from the state after the block")

    def commit(self, block: Block) -> None:
        self.validate(block)
        self.states.append(self.state.apply(block))
        self.blocks.append(block)
        self.committed_ids.update(tx.id for tx in block.transactions)

    def money_conserved(self) -> bool:
        return sum(b for _, b in self.state.balances) == self.state.supply

    def build(
        self, request: BuildProposal, pending: Sequence[Transaction], timestamp_ms: int
    ) -> Block:
        chosen = [tx for tx in pending if tx.id not in self.committed_ids][:32]
        draft = blocks.build(
            chain_id=self.chain_id,
            height=request.height,
            parent_hash=request.parent_hash,
            timestamp_ms=timestamp_ms,
            proposer=request.proposer,
            round=request.round,
            transactions=chosen,
            state_root=b"",
            receipts_root=b"",
        )
        return blocks.build(
            chain_id=self.chain_id,
            height=request.height,
            parent_hash=request.parent_hash,
            timestamp_ms=timestamp_ms,
            proposer=request.proposer,
            round=request.round,
            transactions=chosen,
            state_root=self.state.apply(draft).root(),
            receipts_root=b"",
        )
