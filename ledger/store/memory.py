"""In-memory store: the reference behaviour of ``Store``, for tests and simulations."""

from __future__ import annotations

from straits.ledger.v1 import receipt_pb2 as receipt_pb

from ledger.block import Block
from ledger.execute import Execution
from ledger.state import State
from ledger.store.base import Store, TransactionRecord, check_commit


class MemoryStore(Store):
    def __init__(self) -> None:
        self._blocks: list[Block] = []
        self._state: State | None = None
        self._records: dict[bytes, TransactionRecord] = {}
        self._settlements: list[tuple[receipt_pb.QueueSettlement, ...]] = []
        self._last_signed: bytes | None = None

    def load_state(self) -> State | None:
        return self._state

    def commit(self, block: Block, execution: Execution) -> None:
        check_commit(self, block, execution)
        for index, (transaction, receipt) in enumerate(
            zip(block.transactions, execution.receipts, strict=True)
        ):
            record = TransactionRecord(block.height, index, transaction, receipt)
            self._records[transaction.id] = record
        for settlement in execution.settlements:
            queued = self._records[settlement.transfer_id]
            self._records[settlement.transfer_id] = TransactionRecord(
                queued.height,
                queued.index,
                queued.transaction,
                queued.receipt,
                settlement,
                block.height,
            )
        self._settlements.append(execution.settlements)
        self._blocks.append(block)
        self._state = execution.state

    def head_height(self) -> int:
        return len(self._blocks)

    def block(self, height: int) -> Block | None:
        return self._blocks[height - 1] if 1 <= height <= len(self._blocks) else None

    def blocks(self, from_height: int, limit: int) -> list[Block]:
        start = max(from_height, 1) - 1
        return self._blocks[start : start + max(limit, 0)]

    def transaction(self, transaction_id: bytes) -> TransactionRecord | None:
        return self._records.get(transaction_id)

    def receipts(self, height: int) -> list[receipt_pb.Receipt]:
        block = self.block(height)
        if block is None:
            return []
        return [self._records[t.id].receipt for t in block.transactions]

    def settlements(self, height: int) -> list[receipt_pb.QueueSettlement]:
        return list(self._settlements[height - 1]) if 1 <= height <= len(self._settlements) else []

    def save_last_signed(self, record: bytes) -> None:
        self._last_signed = bytes(record)

    def load_last_signed(self) -> bytes | None:
        return self._last_signed

    def close(self) -> None:
        """Nothing to release: the data lives as long as the object."""
