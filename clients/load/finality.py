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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import grpc
from straits.ledger.v1 import block_pb2, receipt_pb2
from straits.validator.v1 import validator_pb2 as validator_pb
from straits.validator.v1 import validator_pb2_grpc

# A broken block stream moves to the next validator after a pause; it gives up after
# this many failed streams per validator in a row.
_ATTEMPTS_PER_VALIDATOR = 3
_RECONNECT_PAUSE_S = 0.5

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
    """Streams committed blocks into a tracker, on its own thread, from the first of
    ``channels`` (validators, as the regulator); when a stream breaks it goes on from
    the next validator at the height after the last block it saw."""

    def __init__(self, channels: Sequence[grpc.Channel], tracker: FinalityTracker,
                 clock: Callable[[], float]) -> None:
        self._stubs = [validator_pb2_grpc.ValidatorServiceStub(c) for c in channels]
        self._tracker = tracker
        self._clock = clock
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._call: grpc.Call | None = None
        self._thread: threading.Thread | None = None
        self.interruptions: list[str] = []

    def start(self, from_height: int) -> None:
        self._thread = threading.Thread(target=self._run, args=(from_height,),
                                        name="load-blocks", daemon=True)
        self._thread.start()

    def _run(self, from_height: int) -> None:
        failures, index = 0, 0
        while not self._stopped.is_set() and failures < _ATTEMPTS_PER_VALIDATOR * len(self._stubs):
            height = max(from_height, self._tracker.height + 1)
            request = validator_pb.StreamBlocksRequest(from_height=height)
            with self._lock:
                if self._stopped.is_set():
                    return
                call = self._call = self._stubs[index].StreamBlocks(request)
            try:
                for answer in call:
                    self._tracker.observe(answer.block, self._clock())
                    failures = 0
            except grpc.RpcError as error:
                if self._stopped.is_set():
                    return
                self.interruptions.append(
                    f"validator {index + 1} of {len(self._stubs)} at height {height}: "
                    f"{error.code().name}: {error.details()}")
            failures += 1
            index = (index + 1) % len(self._stubs)
            self._stopped.wait(_RECONNECT_PAUSE_S)

    def stop(self) -> None:
        with self._lock:
            self._stopped.set()
            if self._call is not None:
                self._call.cancel()
        if self._thread is not None:
            self._thread.join(timeout=5)
