"""The finality tracker: committed blocks in, the moment each payment became final out.

A payment is final when the block that settles it is committed: its own receipt
says SETTLED (or REJECTED), or, for a payment that queued, a later block carries
a ``QueueSettlement`` saying how it left the queue. The tracker is fed the block
views a validator streams to the regulator (``ValidatorService.StreamBlocks``)
with the time each was received, and matches them by transaction id.

A block may arrive before the submission that carried the payment has even been
answered (the ledger is faster than the reply), so outcomes of ids nobody waits
for yet are remembered for ``remember_seconds`` and claimed when ``expect`` comes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import grpc
from straits.ledger.v1 import block_pb2, receipt_pb2
from straits.validator.v1 import validator_pb2 as validator_pb
from straits.validator.v1 import validator_pb2_grpc

SETTLED = "SETTLED"
REJECTED = "REJECTED"
CANCELLED = "CANCELLED"
_QUEUED = receipt_pb2.OUTCOME_QUEUED
_FINAL = {
    receipt_pb2.OUTCOME_SETTLED: SETTLED,
    receipt_pb2.OUTCOME_APPLIED: SETTLED,
    receipt_pb2.OUTCOME_REJECTED: REJECTED,
    receipt_pb2.OUTCOME_CANCELLED: CANCELLED,
}


@dataclass(frozen=True, slots=True)
class Finality:
    """What became of one transaction and when its final block was received."""

    transaction_id: bytes
    status: str  # SETTLED, REJECTED or CANCELLED
    reason: str
    height: int
    received: float


Listener = Callable[[Finality], None]


class FinalityTracker:
    """Thread-safe: the block-stream thread calls ``observe``, submitters ``expect``."""

    def __init__(self, remember_seconds: float = 120.0) -> None:
        self._remember = remember_seconds
        self._lock = threading.Lock()
        self._waiting: dict[bytes, Listener] = {}
        self._unclaimed: OrderedDict[bytes, Finality] = OrderedDict()
        self._queued: set[bytes] = set()
        self.height = 0
        self.last_block_at: float | None = None

    def expect(self, transaction_id: bytes, listener: Listener) -> None:
        """Call ``listener`` once the transaction is final (now, if it already is)."""
        with self._lock:
            done = self._unclaimed.pop(transaction_id, None)
            if done is None:
                self._waiting[transaction_id] = listener
        if done is not None:
            listener(done)

    def forget(self, transaction_id: bytes) -> None:
        """Stop waiting for a transaction (its run ended or it timed out)."""
        with self._lock:
            self._waiting.pop(transaction_id, None)

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def observe(self, view: validator_pb.BlockView, received: float) -> list[Finality]:
        """Take one committed block; returns what became final in it."""
        height = _height(view)
        finals = []
        for receipt in view.receipts:
            tx_id = bytes(receipt.transaction_id)
            if receipt.outcome == _QUEUED:
                with self._lock:
                    self._queued.add(tx_id)
                continue
            status = _FINAL.get(receipt.outcome)
            if status is not None:
                finals.append(Finality(tx_id, status, receipt.reason, height, received))
        for settlement in view.queue_settlements:
            tx_id = bytes(settlement.transfer_id)
            status = _FINAL.get(settlement.outcome, CANCELLED)
            finals.append(Finality(tx_id, status, "", height, received))
        self._deliver(finals, received)
        self.height = max(self.height, height)
        self.last_block_at = received
        return finals

    def queued(self, transaction_id: bytes) -> bool:
        """Whether a block took the transaction into a queue (not final yet)."""
        with self._lock:
            return transaction_id in self._queued

    def _deliver(self, finals: Iterable[Finality], received: float) -> None:
        ready = []
        with self._lock:
            for final in finals:
                self._queued.discard(final.transaction_id)
                listener = self._waiting.pop(final.transaction_id, None)
                if listener is None:
                    self._unclaimed[final.transaction_id] = final
                else:
                    ready.append((listener, final))
            while self._unclaimed:
                oldest = next(iter(self._unclaimed.values()))
                if received - oldest.received <= self._remember:
                    break
                self._unclaimed.popitem(last=False)
        for listener, final in ready:
            listener(final)


def _height(view: validator_pb.BlockView) -> int:
    return block_pb2.BlockHeader.FromString(view.block.header).height


class BlockFollower:
    """Streams committed blocks from one validator into a tracker, on its own thread."""

    def __init__(self, channel: grpc.Channel, tracker: FinalityTracker,
                 clock: Callable[[], float]) -> None:
        self._stub = validator_pb2_grpc.ValidatorServiceStub(channel)
        self._tracker = tracker
        self._clock = clock
        self._call: grpc.Call | None = None
        self._thread: threading.Thread | None = None
        self.error: str = ""

    def start(self, from_height: int) -> None:
        call = self._stub.StreamBlocks(validator_pb.StreamBlocksRequest(from_height=from_height))
        self._call = call
        self._thread = threading.Thread(target=self._run, args=(call,), name="load-blocks",
                                        daemon=True)
        self._thread.start()

    def _run(self, call: Iterable[validator_pb.StreamBlocksResponse]) -> None:
        try:
            for answer in call:
                self._tracker.observe(answer.block, self._clock())
        except grpc.RpcError as error:
            if error.code() is not grpc.StatusCode.CANCELLED:
                self.error = f"{error.code().name}: {error.details()}"

    def stop(self) -> None:
        if self._call is not None:
            self._call.cancel()
        if self._thread is not None:
            self._thread.join(timeout=5)
