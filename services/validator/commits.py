"""The feed of committed blocks that streams and watchers follow.

The node loop publishes each committed block with what it did (receipts and queue
settlements); readers on gRPC threads wait for heights past the one they have.
Recent blocks are kept in memory so a follower that is a little behind is served
without touching the store; older ones come from the store.
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from dataclasses import dataclass

from straits.ledger.v1 import receipt_pb2 as receipt_pb

from ledger.block import Block
from ledger.execute import Execution
from ledger.receipts import leaves
from ledger.store import Store

RECENT = 256


@dataclass(frozen=True)
class Committed:
    block: Block
    receipts: tuple[receipt_pb.Receipt, ...]
    settlements: tuple[receipt_pb.QueueSettlement, ...]
    # The leaves the execution hashed for its receipts root, when it is at hand.
    hashed_leaves: list[bytes] | None = None

    @functools.cached_property
    def receipt_leaves(self) -> list[bytes]:
        """The sealed receipt leaves every redacted view lists: hashed once per block, not
        once per follower stream (and not again at all for a block this validator
        executed: its execution hashed them for the receipts root)."""
        if self.hashed_leaves is not None:
            return self.hashed_leaves
        return leaves(self.block.transactions, self.receipts, self.settlements)


class CommitFeed:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._recent: deque[Committed] = deque(maxlen=RECENT)
        self._height = store.head_height()
        self._changed = threading.Condition()
        self._closed = False

    @property
    def height(self) -> int:
        return self._height

    def publish(self, block: Block, execution: Execution) -> None:
        entry = Committed(
            block, execution.receipts, execution.settlements, execution.receipt_leaves
        )
        with self._changed:
            self._recent.append(entry)
            self._height = block.height
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait_past(self, height: int, timeout: float) -> bool:
        """True once a block above ``height`` is committed; False on timeout or close."""
        with self._changed:
            self._changed.wait_for(lambda: self._height > height or self._closed, timeout)
            return self._height > height

    def get(self, height: int) -> Committed | None:
        with self._changed:  # a publish shifts the deque once it is full
            recent = self._recent
            if recent and recent[0].block.height <= height <= recent[-1].block.height:
                return recent[height - recent[0].block.height]
        block = self._store.block(height)
        if block is None:
            return None
        receipts = []
        for tx in block.transactions:
            record = self._store.transaction(tx.id)
            if record is not None:
                receipts.append(record.receipt)
        return Committed(block, tuple(receipts), tuple(self._store.settlements(height)))
