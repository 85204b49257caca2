"""The real ledger behind simulated nodes: ``ledger.state`` rules over a ``MemoryStore``.

``LedgerChain`` gives the cluster the same face as ``ToyChain`` but every block is
built and checked by ``ledger.execute`` (admission, signatures, business rules,
queues, state root) through the validator's own ``Chain`` (ledger/chain.py),
so the replicated state the properties look at is the one a validator keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from ledger.block import Block
from ledger.chain import Chain
from ledger.consensus import BuildProposal, ChainHead
from ledger.genesis import Genesis
from ledger.keys import PublicKey
from ledger.state import State
from ledger.store import MemoryStore
from ledger.transaction import Transaction
from tests.consensus.keys import cached, participant_key


class CachedCheck:
    """Transaction signatures through the simulation's shared verdict cache."""

    def verify_transactions(
        self, transactions: Sequence[Transaction], key_of: Callable[[str], PublicKey | None]
    ) -> list[bool]:
        verdicts = []
        for transaction in transactions:
            key = key_of(transaction.signer)
            verdicts.append(
                key is not None and cached(key).verify(transaction.signature, transaction.signed)
            )
        return verdicts


def sim_genesis(
    chain_id: str, validators: Mapping[str, PublicKey], banks: Iterable[str], central_bank: str
) -> Genesis:
    participants = [
        {"id": central_bank, "role": "central_bank", "name": "Central Bank"},
        *({"id": bank, "role": "bank", "name": bank.title()} for bank in banks),
    ]
    for participant in participants:
        participant["key"] = participant_key(participant["id"]).public_key.to_text()
    return Genesis.from_dict(
        {
            "chain_id": chain_id,
            "currency": {"code": "SGD", "decimals": 2},
            "genesis_time_ms": 0,
            "participants": participants,
            "validators": [
                {"id": name, "key": key.to_text()} for name, key in sorted(validators.items())
            ],
        }
    )


class LedgerChain:
    def __init__(self, genesis: Genesis) -> None:
        self._chain = Chain(MemoryStore(), State.genesis(genesis), CachedCheck())
        self.chain_id = genesis.chain_id
        self.blocks: list[Block] = []
        self.committed_ids: set[bytes] = set()

    @property
    def state(self) -> State:
        return self._chain.state

    def head(self) -> ChainHead:
        return self._chain.head()

    def validators_for(self, height: int) -> dict[str, PublicKey]:
        return {name: cached(key) for name, key in self._chain.validators_for(height).items()}

    def validate(self, block: Block) -> None:
        self._chain.validate(block)

    def commit(self, block: Block) -> None:
        self._chain.commit(block)
        self.blocks.append(block)
        self.committed_ids.update(tx.id for tx in block.transactions)

    def build(
        self, request: BuildProposal, pending: Sequence[Transaction], timestamp_ms: int
    ) -> Block:
        fresh = [tx for tx in pending if tx.id not in self.committed_ids][:64]
        return self._chain.build(request, fresh, timestamp_ms)

    def money_conserved(self) -> bool:
        state = self.state
        return sum(state.balances.values()) == state.supply and all(
            b >= 0 for b in state.balances.values()
        )
