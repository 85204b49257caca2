"""The validator's pool of admitted transactions waiting for a block.

Bounded: when full it refuses new transactions (the servicer answers
RESOURCE_EXHAUSTED) instead of growing, so a flood slows its senders rather than
exhausting the node. Arrival order is kept, and the proposer takes from the front.
A transaction stays in the pool until a committed block carries it or its
``valid_until_height`` passes; a proposal that fails to commit loses nothing.

The pool also remembers, for each transaction, the key its signature was checked
against at admission, and finds a transaction by its signed bytes: a proposal
that carries transactions this validator admitted then reuses the decoded,
checked values (``known``, ``checked``) instead of decoding and verifying them
again.

Thread-safe: gRPC handler threads add, the node loop takes and removes.
"""

from __future__ import annotations

import enum
import heapq
import threading
from collections.abc import Iterable, Sequence

from ledger.keys import PublicKey
from ledger.transaction import Transaction


class Admission(enum.Enum):
    ADDED = "added"
    DUPLICATE = "duplicate"  # already waiting: a retry, answered as a success
    FULL = "full"


class Mempool:
    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"expected a positive capacity, got {capacity}")
        self.capacity = capacity
        self._pending: dict[bytes, Transaction] = {}
        self._by_body: dict[bytes, Transaction] = {}
        self._keys: dict[bytes, PublicKey] = {}
        # Ids by the last height they may be included at, and those heights in a heap:
        # pruning after a block looks at what expires, not at the whole pool.
        self._expiring: dict[int, dict[bytes, None]] = {}
        self._heights: list[int] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._pending

    def get(self, tx_id: bytes) -> Transaction | None:
        return self._pending.get(tx_id)

    def add(
        self, transactions: Sequence[Transaction], keys: Sequence[PublicKey] | None = None
    ) -> list[Admission]:
        """Admit in order; the batch is cut where the pool fills, never reordered.

        ``keys``, one per transaction, are the keys their signatures were checked
        against: only a transaction added with its key counts as ``checked``.
        """
        results: list[Admission] = []
        with self._lock:
            pending, by_body, checked_with = self._pending, self._by_body, self._keys
            for i, tx in enumerate(transactions):
                if tx.id in pending:
                    results.append(Admission.DUPLICATE)
                elif len(pending) >= self.capacity:
                    results.append(Admission.FULL)
                else:
                    pending[tx.id] = tx
                    by_body[tx.body_bytes] = tx
                    until = tx.body.valid_until_height
                    bucket = self._expiring.get(until)
                    if bucket is None:
                        bucket = self._expiring[until] = {}
                        heapq.heappush(self._heights, until)
                    bucket[tx.id] = None
                    if keys is not None:
                        checked_with[tx.id] = keys[i]
                    results.append(Admission.ADDED)
        return results

    def known(self, body: bytes, signature: bytes) -> Transaction | None:
        """The pooled transaction with exactly these signed bytes and signature, if any."""
        tx = self._by_body.get(body)
        return tx if tx is not None and tx.signature == signature else None

    def checked(self, tx: Transaction, key: PublicKey | None) -> bool:
        """Whether ``tx`` is this pool's own value, its signature checked against ``key``."""
        return (
            key is not None and self._pending.get(tx.id) is tx and self._keys.get(tx.id) == key
        )

    def take(self, limit: int, *, height: int) -> list[Transaction]:
        """Up to ``limit`` transactions still valid at ``height``, oldest first (not removed)."""
        taken: list[Transaction] = []
        with self._lock:
            for tx in self._pending.values():
                if tx.body.valid_until_height >= height:
                    taken.append(tx)
                    if len(taken) >= limit:
                        break
        return taken

    def remove(self, tx_ids: Iterable[bytes]) -> None:
        with self._lock:
            for tx_id in tx_ids:
                self._forget(tx_id)

    def prune_expired(self, height: int) -> list[Transaction]:
        """Drop what can no longer be included at ``height``; return it so callers can report it."""
        expired: list[Transaction] = []
        with self._lock:
            heights = self._heights
            while heights and heights[0] < height:
                for tx_id in self._expiring.pop(heapq.heappop(heights), ()):
                    tx = self._pending.get(tx_id)
                    if tx is not None:
                        expired.append(tx)
            for tx in expired:
                self._forget(tx.id)
        return expired

    def _forget(self, tx_id: bytes) -> None:
        tx = self._pending.pop(tx_id, None)
        if tx is not None:
            self._keys.pop(tx_id, None)
            bucket = self._expiring.get(tx.body.valid_until_height)
            if bucket is not None:
                bucket.pop(tx_id, None)
            if self._by_body.get(tx.body_bytes) is tx:
                del self._by_body[tx.body_bytes]
