"""The intake: two worker threads that run admission for every batch that arrives.

gRPC handler threads do not admit transactions themselves. A submission from a
bank or the central bank is queued and its handler waits for the answer; a batch
shared by another validator is queued and its handler returns at once. Either
way the handlers stay free, so a consensus message never waits for a worker
behind a pile of signature checks.

Admission is a pipeline of two threads with the verifier's pool between them. The
``intake`` thread decodes a batch, checks it against the chain and hands its
signatures to the verifier's threads (``Admitter.prepare``), then goes on to the next
batch; the ``intake-finish`` thread takes the batches in the same order, collects the
verdicts and runs the stages after (``Admitter.finish``). So the verifier has the next
batch to check while the interpreter runs a batch's Python, and a single validator
keeps both cores busy (docs/bench.md). ``IN_FLIGHT`` prepared batches wait between the
two threads, and one more in the intake thread for room.

The queue is bounded in transactions. When it is full a submission is refused
with RESOURCE_EXHAUSTED, telling the bank to slow down, and a shared batch is
dropped (sharing is best effort: the validator that admitted it still holds it).
Batches waiting together are admitted together, up to ``merge_limit`` transactions,
so the verifier sees large batches. Not larger: a transaction enters the mempool only
when its whole batch has passed, and a proposal that carries it before then has its
signature checked a second time, in the block. At saturation, batches of 4,096 made
about one verification in seven such a repeat; batches of 512 (eight chunks for the verifier's
workers) make about one in thirty (docs/bench.md).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from straits.ledger.v1 import transaction_pb2 as tx_pb
from straits.validator.v1 import validator_pb2 as validator_pb

from services.common.errors import OverloadedError, UnavailableError
from services.validator.admission import Admitter, Prepared

log = logging.getLogger(__name__)

Results = list[validator_pb.SubmissionResult]
MERGE_LIMIT = 512
# Batches prepared and not yet finished: enough that the verifier always has the next one.
IN_FLIGHT = 2


@dataclass
class _Batch:
    signed: Sequence[tx_pb.SignedTransaction]
    sender: str | None
    answer: Future[Results] | None


@dataclass
class IntakeStats:
    admitted_batches: int = 0
    shared_dropped: int = 0
    submissions_refused: int = 0
    queued: int = field(default=0)


class Intake:
    def __init__(
        self, admitter: Admitter, *, capacity: int, merge_limit: int = MERGE_LIMIT
    ) -> None:
        self._admitter = admitter
        self.capacity = capacity
        self._merge_limit = merge_limit
        self._batches: deque[_Batch] = deque()
        self._queued = 0
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="intake", daemon=True)
        # (batches, what prepare made of them); None tells the finishing thread to end.
        self._prepared: queue.Queue[tuple[list[_Batch], Prepared] | None] = queue.Queue(
            IN_FLIGHT
        )
        self._finisher = threading.Thread(
            target=self._finish_run, name="intake-finish", daemon=True
        )
        self.stats = IntakeStats()

    def start(self) -> None:
        self._finisher.start()
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            waiting, self._batches = list(self._batches), deque()
            self._wake.notify()
        # Whoever still waits is told now, not at its deadline: nothing of theirs was kept.
        for batch in waiting:
            if batch.answer is not None and not batch.answer.done():
                batch.answer.set_exception(
                    UnavailableError("expected a running validator; it is stopping")
                )
        # What was prepared is finished: its signatures are already being checked. The
        # intake thread ends the finishing thread's queue itself, after its last batch.
        self._thread.join(timeout=10)
        self._finisher.join(timeout=10)

    def submit(
        self, signed: Sequence[tx_pb.SignedTransaction], *, sender: str, timeout: float
    ) -> Results:
        """Admit a bank's or the central bank's batch; waits for the per-item results."""
        answer: Future[Results] = Future()
        if self._stopped:
            raise UnavailableError("expected a running validator; it is stopping")
        if not self._enqueue(_Batch(signed, sender, answer)):
            self.stats.submissions_refused += 1
            raise OverloadedError(
                f"expected room for {len(signed)} transactions in the validator's intake "
                f"(capacity {self.capacity}); retry shortly"
            )
        try:
            return answer.result(timeout=timeout)
        except TimeoutError:
            # Re-sending the same signed transactions is safe: the retry is answered
            # ALREADY_PENDING or ALREADY_COMMITTED for what this attempt admitted.
            raise UnavailableError(
                f"expected admission within the call's deadline ({timeout:.1f} s); retry"
            ) from None

    def share(self, signed: Sequence[tx_pb.SignedTransaction]) -> bool:
        """Queue another validator's batch; False when it was dropped for lack of room."""
        if self._enqueue(_Batch(signed, None, None)):
            return True
        self.stats.shared_dropped += len(signed)
        return False

    def _enqueue(self, batch: _Batch) -> bool:
        with self._wake:
            if self._stopped or (
                self._queued and self._queued + len(batch.signed) > self.capacity
            ):
                return False
            self._batches.append(batch)
            self._queued += len(batch.signed)
            self.stats.queued = self._queued
            self._wake.notify()
        return True

    def _take(self) -> list[_Batch] | None:
        with self._wake:
            while not self._batches and not self._stopped:
                self._wake.wait()
            if self._stopped:
                return None
            taken, count = [], 0
            while self._batches and (
                not taken or count + len(self._batches[0].signed) <= self._merge_limit
            ):
                batch = self._batches.popleft()
                taken.append(batch)
                count += len(batch.signed)
            self._queued -= count
            self.stats.queued = self._queued
            return taken

    def _run(self) -> None:
        try:
            while (taken := self._take()) is not None:
                self._prepare_all(taken)
        finally:
            self._prepared.put(None)  # after every batch this thread prepared

    def _prepare_all(self, taken: list[_Batch]) -> None:
        # One admission per kind of sender keeps the rules of each (a bank's batch is
        # checked against its signer and business rules; a shared one is not).
        for sender in dict.fromkeys(b.sender for b in taken):
            group = [b for b in taken if b.sender == sender]
            try:
                prepared = self._prepare(group, sender)
            except Exception as error:  # every waiting handler must hear of it
                log.exception("intake: admission failed")
                _fail(group, error)
                continue
            self._prepared.put((group, prepared))

    def _prepare(self, group: list[_Batch], sender: str | None) -> Prepared:
        signed = [s for b in group for s in b.signed]
        # Only a participant's submission has a caller waiting for its results.
        submitted = sender is not None
        return self._admitter.prepare(
            signed, sender=sender, check_rules=submitted, answer=submitted
        )

    def _finish_run(self) -> None:
        while (item := self._prepared.get()) is not None:
            group, prepared = item
            try:
                results = self._admitter.finish(prepared)
            except Exception as error:
                log.exception("intake: admission failed")
                _fail(group, error)
                continue
            self.stats.admitted_batches += len(group)
            start = 0
            for batch in group:
                end = start + len(batch.signed)
                if batch.answer is not None:  # only then were results built
                    batch.answer.set_result(results[start:end])
                start = end


def _fail(group: list[_Batch], error: Exception) -> None:
    for batch in group:
        if batch.answer is not None and not batch.answer.done():
            batch.answer.set_exception(error)
