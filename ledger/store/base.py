"""The storage interface: committed blocks, their receipts, the state, the last-signed record.

``commit(block, execution)`` is atomic: after a crash at any point a store holds the
previous head or the new one, whole. ``load_state`` gives back exactly the State the
last commit wrote (same root). Records are keyed by ``height << 20 | index``, so keys
grow with time and rows append at the end of their tables (``MAX_BLOCK_INDEX`` bounds
the transactions and settlements of one block).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from straits.ledger.v1 import receipt_pb2 as receipt_pb

from ledger.block import Block
from ledger.errors import StoreError, expected
from ledger.execute import Execution
from ledger.state import State
from ledger.transaction import Transaction

INDEX_BITS = 20
MAX_BLOCK_INDEX = (1 << INDEX_BITS) - 1


def record_key(height: int, index: int) -> int:
    return height << INDEX_BITS | index


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    """A committed transaction with its receipt and, for a queued transfer, how it left."""

    height: int
    index: int
    transaction: Transaction
    receipt: receipt_pb.Receipt
    settlement: receipt_pb.QueueSettlement | None = None
    settled_height: int | None = None

    @property
    def key(self) -> int:
        """The record's place in the chain, ``height << 20 | index``: what the stores key
        their rows by, in chain order."""
        return record_key(self.height, self.index)


def counterparty(transaction: Transaction) -> str | None:
    """The participant a transaction acts on besides its signer: whose view shows it."""
    body = transaction.body
    kind = transaction.kind
    if kind == "transfer":
        return body.transfer.payee
    if kind == "issue":
        return body.issue.bank
    if kind in ("admit_bank", "suspend_bank", "unsuspend_bank"):
        return getattr(body, kind).bank
    return None


class Store(ABC):
    @abstractmethod
    def load_state(self) -> State | None:
        """The state after the last committed block, or None before the first commit."""

    @abstractmethod
    def commit(self, block: Block, execution: Execution) -> None:
        """Record ``block`` and the state it produced, all or nothing."""

    @abstractmethod
    def head_height(self) -> int:
        """Height of the last committed block; 0 before the first commit."""

    @abstractmethod
    def block(self, height: int) -> Block | None: ...

    @abstractmethod
    def blocks(self, from_height: int, limit: int) -> list[Block]: ...

    @abstractmethod
    def transaction(self, transaction_id: bytes) -> TransactionRecord | None: ...

    @abstractmethod
    def receipts(self, height: int) -> list[receipt_pb.Receipt]:
        """The receipts of block ``height``, in transaction order."""

    @abstractmethod
    def settlements(self, height: int) -> list[receipt_pb.QueueSettlement]:
        """Queued transfers that settled or were cancelled in block ``height``."""

    @abstractmethod
    def save_last_signed(self, record: bytes) -> None:
        """Durably keep the consensus engine's last-signed record (opaque bytes)."""

    @abstractmethod
    def load_last_signed(self) -> bytes | None: ...

    @abstractmethod
    def close(self) -> None: ...

    def damage(self) -> list[str]:
        """What a low-level check of the storage itself finds wrong; empty when sound."""
        return []

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def check_commit(store: Store, block: Block, execution: Execution) -> None:
    """What every store refuses before writing anything."""
    head = store.head_height()
    if block.height != head + 1:
        raise StoreError(expected(f"block {head + 1}", block.height), field="block.height")
    state = execution.state
    if state.height != block.height or state.head_hash != block.hash:
        raise StoreError(
            expected(
                f"the execution of block {block.height} stamped with its hash",
                f"a state at height {state.height}",
            ),
            field="execution",
        )
    if len(block.transactions) > MAX_BLOCK_INDEX or len(execution.settlements) > MAX_BLOCK_INDEX:
        raise StoreError(
            expected(f"at most {MAX_BLOCK_INDEX} records a block", len(block.transactions))
        )
