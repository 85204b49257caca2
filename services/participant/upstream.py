"""A participant node's link to the validators: failover for calls, batching for submissions.

A bank or central-bank node talks to every validator it is configured with, not one:
when the validator it prefers answers UNAVAILABLE or misses its deadline, the call
goes to the next one, so one validator down never stops the node. The preferred
validator only changes on such a failure, so calls do not hop around needlessly.

``Submitter`` coalesces concurrent submissions into one ``SubmitTransactions`` call:
a gRPC call costs ~150 µs of CPU whatever it carries, a transfer inside a batch
~0.5 µs. A caller's transactions are never split across calls, and each caller gets
back exactly its own results, in order.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from typing import Any

import grpc
from straits.common.v1 import common_pb2 as common_pb
from straits.validator.v1 import validator_pb2 as pb
from straits.validator.v1 import validator_pb2_grpc as pb_grpc

from ledger.errors import StraitsError, expected
from ledger.transaction import Transaction
from services.common.config import Peer
from services.common.errors import STATUS_CODES, UnavailableError
from services.common.server import MAX_MESSAGE_BYTES
from wire.status import details_of
from wire.tls import TlsFiles, secure_channel

log = logging.getLogger(__name__)

# Codes after which another validator may well succeed; anything else is an answer.
FAILOVER_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
CALL_TIMEOUT_S = 5.0
# What one SubmitTransactions may carry (the validators' own limit is 10,000).
MAX_BATCH = 2000
LINGER_S = 0.003


class Upstream:
    def __init__(self, validators: Sequence[Peer], tls: TlsFiles) -> None:
        if not validators:
            raise UnavailableError(
                expected("at least one validator address", []), field="validators"
            )
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        self._peers = tuple(validators)
        self._channels = [secure_channel(p.address, tls, options) for p in self._peers]
        self._stubs = [pb_grpc.ValidatorServiceStub(c) for c in self._channels]
        self._preferred = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return len(self._stubs)

    def order(self) -> list[int]:
        """Validator indices to try, the preferred one first."""
        start = self._preferred
        return [(start + i) % len(self._stubs) for i in range(len(self._stubs))]

    def failed(self, index: int) -> None:
        with self._lock:
            if self._preferred == index:
                self._preferred = (index + 1) % len(self._stubs)

    def name(self, index: int) -> str:
        return self._peers[index].id

    def call(self, method: str, request: Any, timeout: float = CALL_TIMEOUT_S) -> Any:
        """``method`` on the first validator that answers. A validator's refusal is
        raised as the Straits error it stands for, so it reaches our caller as is."""
        reasons = []
        for index in self.order():
            try:
                return getattr(self._stubs[index], method)(request, timeout=timeout)
            except grpc.RpcError as error:
                if error.code() not in FAILOVER_CODES:
                    details = details_of(error)
                    raise item_error(
                        common_pb.Error(
                            status_code=int(details.code.value[0]),
                            reason=details.reason,
                            field=details.field,
                            detail=details.message,
                        )
                    ) from None
                reasons.append(f"{self.name(index)}: {error.code().name}")
                self.failed(index)
        raise UnavailableError(expected("a validator that answers", "; ".join(reasons)))

    def call_fresh(self, method: str, request: Any, min_height: int) -> Any:
        """``call``, but from a validator whose answer is at ``min_height`` or above when
        one is (validators commit a block at slightly different moments), so a client
        never reads a state older than what its node has already told it."""
        freshest = None
        for _ in range(len(self._stubs)):
            answer = self.call(method, request)
            if answer.height >= min_height:
                return answer
            if freshest is None or answer.height > freshest.height:
                freshest = answer
            with self._lock:
                self._preferred = (self._preferred + 1) % len(self._stubs)
        return freshest

    def stream_blocks(self, index: int, from_height: int) -> Iterator[pb.StreamBlocksResponse]:
        return self._stubs[index].StreamBlocks(pb.StreamBlocksRequest(from_height=from_height))

    def head(self, index: int) -> pb.GetHeadResponse:
        return self._stubs[index].GetHead(pb.GetHeadRequest(), timeout=CALL_TIMEOUT_S)

    def close(self) -> None:
        for channel in self._channels:
            channel.close()


Results = list[pb.SubmissionResult]


def item_error(error: common_pb.Error) -> StraitsError:
    """The Straits error a ``common.v1.Error`` stands for (same table, same class)."""
    field = error.field or None
    for cls in STATUS_CODES:
        if cls.code == error.reason:
            return cls(error.detail, field=field)
    for cls, code in STATUS_CODES.items():
        if int(code.value[0]) == error.status_code:
            return cls(error.detail, field=field)
    return StraitsError(error.detail, field=field)


class Submitter:
    """One thread that turns concurrent ``submit`` calls into batched submissions."""

    def __init__(
        self, upstream: Upstream, *, linger_s: float = LINGER_S, max_batch: int = MAX_BATCH
    ) -> None:
        self._upstream = upstream
        self._linger_s = linger_s
        self._max_batch = max_batch
        self._requests: queue.SimpleQueue[tuple[list[Transaction], Future[Results]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name="submitter", daemon=True)
        self.calls = 0  # SubmitTransactions calls made, for tests and metrics

    def start(self) -> Submitter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._requests.put(None)
        self._thread.join(timeout=5)

    def submit(self, transactions: Sequence[Transaction], timeout: float) -> Results:
        """Per-transaction results; ``UnavailableError`` when no validator answered."""
        if not transactions:
            return []
        future: Future[Results] = Future()
        self._requests.put((list(transactions), future))
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            raise UnavailableError(
                expected(f"the validators' answer within {timeout:.1f}s", "none yet")
            ) from None

    def _run(self) -> None:
        while True:
            first = self._requests.get()
            if first is None:
                return
            batch = [first]
            size = len(first[0])
            stop = False
            # Linger briefly so that calls arriving together share one submission.
            while size < self._max_batch:
                try:
                    more = self._requests.get(timeout=self._linger_s)
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
                size += len(more[0])
            self._send(batch)
            if stop:
                return

    def _send(self, batch: list[tuple[list[Transaction], Future[Results]]]) -> None:
        transactions = [t.to_proto() for txs, _ in batch for t in txs]
        self.calls += 1
        try:
            answer = self._upstream.call(
                "SubmitTransactions", pb.SubmitTransactionsRequest(transactions=transactions)
            )
        except grpc.RpcError as error:
            failure: Exception = UnavailableError(
                f"expected the validators to take the batch, got {error.code().name}: "
                f"{error.details()}"
            )
            for _, future in batch:
                future.set_exception(failure)
            return
        except Exception as error:  # every waiting caller must hear of the failure
            for _, future in batch:
                future.set_exception(error)
            return
        results = list(answer.results)
        at = 0
        for txs, future in batch:
            future.set_result(results[at : at + len(txs)])
            at += len(txs)


def submitted(result: pb.SubmissionResult) -> bool:
    """Whether the validators hold the transaction (now or already)."""
    return result.status in (
        pb.SUBMISSION_STATUS_ACCEPTED,
        pb.SUBMISSION_STATUS_ALREADY_PENDING,
        pb.SUBMISSION_STATUS_ALREADY_COMMITTED,
    )
