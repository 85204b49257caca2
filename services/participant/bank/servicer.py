"""BankService servicer: decode, ask the bank's node (a ``BankDesk``), answer.

Only this bank's clients reach it (``services.common.auth``: role ``client`` of the node's
own participant), so no request names the bank. Errors leave as ``StraitsError``s
and the error interceptor maps them; items of ``SendTransfers`` are answered one by
one with ``common.v1.Error`` from the same table.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Protocol

import grpc
from straits.bank.v1 import bank_pb2 as pb
from straits.bank.v1 import bank_pb2_grpc as pb_grpc
from straits.common.v1 import common_pb2 as common_pb
from straits.validator.v1 import validator_pb2 as validator_pb

from ledger.errors import StraitsError, expected
from services.common.errors import InvalidRequestError, to_error_proto
from services.participant.bank.payments import TRANSFER, HistoryFilter, PaymentBook
from services.participant.node import remaining


class BankDesk(Protocol):
    """What the servicer asks of the bank's node (``BankNode`` provides it)."""

    book: PaymentBook
    events: threading.Condition

    @property
    def height(self) -> int: ...
    @property
    def running(self) -> bool: ...
    def send(
        self, instructions: Sequence[pb.TransferInstruction], *, wait: bool, timeout: float
    ) -> list[pb.Payment | StraitsError]: ...
    def payment(self, *, transfer_id: bytes = b"", request_id: str = "") -> pb.Payment: ...
    def operate(
        self, kind: str, transfer_id: bytes, timeout: float, priority: int = 0
    ) -> tuple[common_pb.Commit, pb.Payment]: ...
    def redeem(self, request: pb.RedeemRequest, timeout: float) -> common_pb.Commit: ...
    def balance(self) -> validator_pb.GetAccountResponse: ...


MAX_INSTRUCTIONS = 2000
WATCH_POLL_S = 1.0


def _kinds(kinds: Sequence[int]) -> tuple[int, ...]:
    if pb.PAYMENT_KIND_UNSPECIFIED in kinds:
        raise InvalidRequestError(
            expected("PAYMENT_KIND_TRANSFER, _ISSUANCE or _REDEMPTION", "PAYMENT_KIND_UNSPECIFIED"),
            field="kinds",
        )
    # Empty lists transfers only: what every client saw before kinds existed.
    return tuple(sorted(set(kinds))) or (TRANSFER,)


def _page_token(token: str) -> int:
    if not token:
        return 0
    # isdigit also holds for other scripts' digits; a token is ASCII and fits int64.
    if not (len(token) <= 19 and token.isascii() and token.isdigit() and int(token) < 2**63):
        raise InvalidRequestError(
            expected("a page token from a previous answer", token), field="page_token"
        )
    return int(token)


class BankServicer(pb_grpc.BankServiceServicer):
    def __init__(self, node: BankDesk) -> None:
        self._node = node

    def SendTransfer(
        self, request: pb.SendTransferRequest, context: grpc.ServicerContext
    ) -> pb.SendTransferResponse:
        [result] = self._node.send(
            [request.transfer], wait=request.wait_for_commit, timeout=remaining(context)
        )
        if isinstance(result, StraitsError):
            raise result
        return pb.SendTransferResponse(payment=result)

    def SendTransfers(
        self, request: pb.SendTransfersRequest, context: grpc.ServicerContext
    ) -> pb.SendTransfersResponse:
        if not 1 <= len(request.transfers) <= MAX_INSTRUCTIONS:
            raise InvalidRequestError(
                expected(f"1..{MAX_INSTRUCTIONS} transfers a call", len(request.transfers)),
                field="transfers",
            )
        results = self._node.send(
            request.transfers, wait=request.wait_for_commit, timeout=remaining(context)
        )
        return pb.SendTransfersResponse(
            results=[
                pb.SendResult(error=to_error_proto(r))
                if isinstance(r, StraitsError)
                else pb.SendResult(payment=r)
                for r in results
            ]
        )

    def GetBalance(
        self, request: pb.GetBalanceRequest, context: grpc.ServicerContext
    ) -> pb.GetBalanceResponse:
        answer = self._node.balance()
        return pb.GetBalanceResponse(account=answer.account, height=answer.height)

    def SetLimit(
        self, request: pb.SetLimitRequest, context: grpc.ServicerContext
    ) -> pb.SetLimitResponse:
        commit = self._node.set_limit(request, remaining(context))
        return pb.SetLimitResponse(commit=commit, account=self._node.balance().account)

    def ListQueue(
        self, request: pb.ListQueueRequest, context: grpc.ServicerContext
    ) -> pb.ListQueueResponse:
        outgoing, incoming = self._node.book.queue()
        return pb.ListQueueResponse(outgoing=outgoing, incoming=incoming, height=self._node.height)

    def ListHistory(
        self, request: pb.ListHistoryRequest, context: grpc.ServicerContext
    ) -> pb.ListHistoryResponse:
        where = HistoryFilter(
            direction=request.direction,
            counterparty=request.counterparty,
            statuses=tuple(request.statuses),
            from_height=request.from_height,
            to_height=request.to_height,
            from_time_ms=request.from_time_ms,
            to_time_ms=request.to_time_ms,
            kinds=_kinds(request.kinds),
        )
        # Read before the page: every block at or below it is in the book already.
        height = self._node.height
        payments, token = self._node.book.history(
            where, request.page_size, _page_token(request.page_token)
        )
        return pb.ListHistoryResponse(
            payments=payments, next_page_token=str(token) if token else "", height=height
        )

    def GetPayment(
        self, request: pb.GetPaymentRequest, context: grpc.ServicerContext
    ) -> pb.GetPaymentResponse:
        if request.WhichOneof("key") is None:
            raise InvalidRequestError(
                expected("a transfer_id or a request_id", "neither"), field="key"
            )
        return pb.GetPaymentResponse(
            payment=self._node.payment(
                transfer_id=bytes(request.transfer_id), request_id=request.request_id
            )
        )

    def CancelPayment(
        self, request: pb.CancelPaymentRequest, context: grpc.ServicerContext
    ) -> pb.CancelPaymentResponse:
        commit, payment = self._node.operate(
            "cancel", bytes(request.transfer_id), remaining(context)
        )
        return pb.CancelPaymentResponse(commit=commit, payment=payment)

    def HoldPayment(
        self, request: pb.HoldPaymentRequest, context: grpc.ServicerContext
    ) -> pb.HoldPaymentResponse:
        commit, payment = self._node.operate("hold", bytes(request.transfer_id), remaining(context))
        return pb.HoldPaymentResponse(commit=commit, payment=payment)

    def ReleasePayment(
        self, request: pb.ReleasePaymentRequest, context: grpc.ServicerContext
    ) -> pb.ReleasePaymentResponse:
        commit, payment = self._node.operate(
            "release", bytes(request.transfer_id), remaining(context)
        )
        return pb.ReleasePaymentResponse(commit=commit, payment=payment)

    def ReprioritisePayment(
        self, request: pb.ReprioritisePaymentRequest, context: grpc.ServicerContext
    ) -> pb.ReprioritisePaymentResponse:
        commit, payment = self._node.operate(
            "reprioritise",
            bytes(request.transfer_id),
            remaining(context),
            priority=request.priority,
        )
        return pb.ReprioritisePaymentResponse(commit=commit, payment=payment)

    def Redeem(self, request: pb.RedeemRequest, context: grpc.ServicerContext) -> pb.RedeemResponse:
        return pb.RedeemResponse(commit=self._node.redeem(request, remaining(context)))

    def WatchSettlements(
        self, request: pb.WatchSettlementsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WatchSettlementsResponse]:
        node = self._node
        seq = node.book.event_seq_before(request.from_height)
        while context.is_active() and node.running:
            events = node.book.events_after(seq, request.direction)
            for _, height, payment in events:
                yield pb.WatchSettlementsResponse(payment=payment, height=height)
            if events:
                seq = events[-1][0]
                continue
            # Checked under the condition, so a block stored meanwhile is not missed.
            with node.events:
                node.events.wait_for(
                    lambda after=seq: (
                        not node.running
                        or bool(node.book.events_after(after, request.direction, 1))
                    ),
                    WATCH_POLL_S,
                )
