"""Shared cast for the ledger tests: a central bank, three banks, a regulator, four
validators, all with keys derived from their names, and ``Chain``, which signs their
transactions and runs them through the proposer path and the validator path alike."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pytest
from straits.ledger.v1 import transaction_pb2 as tx_pb

from ledger import block as blocks
from ledger.execute import Execution, InlineCheck, apply_block, execute
from ledger.genesis import Genesis
from ledger.keys import PrivateKey
from ledger.state import NORMAL, State
from ledger.transaction import Transaction, sign

CHAIN_ID = "straits-test"
BANKS = ("bank-a", "bank-b", "bank-c")
VALIDATORS = tuple(f"validator-{i}" for i in range(1, 5))


def key(name: str) -> PrivateKey:
    return PrivateKey.from_seed(hashlib.sha256(name.encode()).digest())


def genesis_dict(chain_id: str = CHAIN_ID) -> dict:
    participants = [
        {"id": "central-bank", "role": "central_bank", "name": "Central Bank"},
        *({"id": b, "role": "bank", "name": b.title()} for b in BANKS),
        {"id": "regulator", "role": "regulator", "name": "Regulator"},
    ]
    for p in participants:
        p["key"] = key(p["id"]).public_key.to_text()
    return {
        "chain_id": chain_id,
        "currency": {"code": "SGD", "decimals": 2},
        "genesis_time_ms": 1767225600000,
        "participants": participants,
        "validators": [{"id": v, "key": key(v).public_key.to_text()} for v in VALIDATORS],
        "parameters": {"max_block_transactions": 2000, "max_transaction_lifetime": 256},
    }


def make_genesis(chain_id: str = CHAIN_ID) -> Genesis:
    return Genesis.from_dict(genesis_dict(chain_id))


class Chain:
    """A chain under test: sign transactions as any participant and commit blocks."""

    def __init__(self, genesis: Genesis | None = None) -> None:
        self.genesis = genesis or make_genesis()
        self.state = State.genesis(self.genesis)
        self.blocks: list[blocks.Block] = []
        self._nonce = 0

    def sign(self, signer: str, *, valid_until: int | None = None, **kind) -> Transaction:
        self._nonce += 1
        body = tx_pb.TransactionBody(
            signer=signer,
            valid_until_height=valid_until or self.state.height + 10,
            nonce=self._nonce,
            **kind,
        )
        return sign(self.genesis.chain_id, key(signer), body)

    def issue(self, bank: str, amount: int, **options) -> Transaction:
        return self.sign(
            "central-bank",
            issue=tx_pb.Issue(bank=bank, amount=amount, collateral_ref="bond"),
            **options,
        )

    def redeem(self, bank: str, amount: int) -> Transaction:
        return self.sign(bank, redeem=tx_pb.Redeem(amount=amount))

    def transfer(
        self,
        payer: str,
        payee: str,
        amount: int,
        priority: int = NORMAL,
        queue_always: bool = False,
    ) -> Transaction:
        return self.sign(
            payer,
            transfer=tx_pb.Transfer(
                payee=payee, amount=amount, priority=priority, queue_always=queue_always
            ),
        )

    def cancel(self, payer: str, transfer: Transaction) -> Transaction:
        return self.sign(payer, cancel=tx_pb.CancelQueued(transfer_id=transfer.id))

    def hold(self, payer: str, transfer: Transaction) -> Transaction:
        return self.sign(payer, hold=tx_pb.HoldQueued(transfer_id=transfer.id))

    def release(self, payer: str, transfer: Transaction) -> Transaction:
        return self.sign(payer, release=tx_pb.ReleaseQueued(transfer_id=transfer.id))

    def reprioritise(self, payer: str, transfer: Transaction, priority: int) -> Transaction:
        return self.sign(
            payer, reprioritise=tx_pb.ReprioritiseQueued(transfer_id=transfer.id, priority=priority)
        )

    def suspend(self, bank: str, signer: str = "central-bank") -> Transaction:
        return self.sign(signer, suspend_bank=tx_pb.SuspendBank(bank=bank))

    def unsuspend(self, bank: str) -> Transaction:
        return self.sign("central-bank", unsuspend_bank=tx_pb.UnsuspendBank(bank=bank))

    def set_limit(
        self, bank: str, amount: int = 0, counterparty: str = "", remove: bool = False
    ) -> Transaction:
        return self.sign(
            bank,
            set_limit=tx_pb.SetLimit(counterparty=counterparty, amount=amount, remove=remove),
        )

    def close_day(self, day: int | None = None) -> Transaction:
        return self.sign("central-bank", close_day=tx_pb.CloseDay(day=day or self.state.day))

    def propose(self, transactions: Iterable[Transaction]) -> tuple[blocks.Block, Execution]:
        """Proposer path: execute leniently and build the block around what was kept."""
        execution = execute(self.state, list(transactions), verify=InlineCheck(), strict=False)
        height = self.state.height + 1
        validators = sorted(self.state.validators_for(height))
        block = blocks.build(
            chain_id=self.genesis.chain_id,
            height=height,
            parent_hash=self.state.head_hash,
            timestamp_ms=self.state.timestamp_ms + 100,
            proposer=validators[height % len(validators)],
            round=0,
            transactions=execution.transactions,
            state_root=execution.state_root,
            receipts_root=execution.receipts_root,
        )
        return block, execution.for_block(block)

    def commit(self, *transactions: Transaction) -> Execution:
        """Propose a block, validate it as a peer would, and make it the head."""
        block, proposed = self.propose(transactions)
        validated = apply_block(self.state, block, verify=InlineCheck())
        assert validated.state.root() == proposed.state.root()
        self.state = validated.state
        self.blocks.append(block)
        return validated


@pytest.fixture
def chain() -> Chain:
    return Chain()
