"""``BankClient``: a bank's own client of its bank node (``BankService``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import grpc
from straits.bank.v1 import bank_pb2 as pb
from straits.bank.v1 import bank_pb2_grpc
from straits.common.v1 import common_pb2
from straits.ledger.v1 import transaction_pb2 as tx_pb

from clients.sdk.channel import (
    COMMIT_TIMEOUT_S,
    DEFAULT_TIMEOUT_S,
    new_request_id,
    pages,
    stream,
    unary,
)

URGENT, NORMAL = tx_pb.PRIORITY_URGENT, tx_pb.PRIORITY_NORMAL
ALL_KINDS = (pb.PAYMENT_KIND_TRANSFER, pb.PAYMENT_KIND_ISSUANCE, pb.PAYMENT_KIND_REDEMPTION)


@dataclass(frozen=True)
class Instruction:
    """One transfer to send; ``request_id`` is drawn once here, so a retry reuses it."""

    payee: str
    amount: int
    priority: int = NORMAL
    reference: str = ""
    queue_always: bool = False
    request_id: str = ""

    def to_proto(self) -> pb.TransferInstruction:
        return pb.TransferInstruction(
            request_id=self.request_id or new_request_id(), payee=self.payee,
            amount=self.amount, priority=self.priority, reference=self.reference,
            queue_always=self.queue_always)


class BankClient:
    def __init__(self, channel: grpc.Channel, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self._stub = bank_pb2_grpc.BankServiceStub(channel)
        self._timeout = timeout

    def _deadline(self, wait: bool) -> float:
        return COMMIT_TIMEOUT_S if wait else self._timeout

    def send(self, payee: str, amount: int, *, priority: int = NORMAL, reference: str = "",
             queue_always: bool = False, request_id: str = "", wait: bool = False) -> pb.Payment:
        instruction = Instruction(payee, amount, priority, reference, queue_always, request_id)
        request = pb.SendTransferRequest(transfer=instruction.to_proto(), wait_for_commit=wait)
        return unary(self._stub.SendTransfer, request, self._deadline(wait)).payment

    def send_many(self, instructions: Iterable[Instruction],
                  wait: bool = False) -> list[pb.SendResult]:
        request = pb.SendTransfersRequest(
            transfers=[i.to_proto() for i in instructions], wait_for_commit=wait)
        return list(unary(self._stub.SendTransfers, request, self._deadline(wait)).results)

    def balance(self) -> common_pb2.Account:
        return unary(self._stub.GetBalance, pb.GetBalanceRequest(), self._timeout).account

    def balance_at(self) -> tuple[common_pb2.Account, int]:
        """The account and the height it was read at."""
        answer = unary(self._stub.GetBalance, pb.GetBalanceRequest(), self._timeout)
        return answer.account, answer.height

    def queue(self) -> pb.ListQueueResponse:
        return unary(self._stub.ListQueue, pb.ListQueueRequest(), self._timeout)

    def history(self, *, direction: int = pb.DIRECTION_UNSPECIFIED, counterparty: str = "",
                statuses: Iterable[int] = (), from_height: int = 0, to_height: int = 0,
                page_size: int = 0, kinds: Iterable[int] = ()) -> Iterator[pb.Payment]:
        """Newest first. ``kinds`` empty: transfers only; ``ALL_KINDS`` adds the central
        bank's issuances to this bank and its redemptions (``Payment.kind`` tells them)."""
        def fetch(token: str) -> tuple[list[pb.Payment], str]:
            request = pb.ListHistoryRequest(
                direction=direction, counterparty=counterparty, statuses=list(statuses),
                from_height=from_height, to_height=to_height, page_size=page_size,
                page_token=token, kinds=list(kinds))
            answer = unary(self._stub.ListHistory, request, self._timeout)
            return list(answer.payments), answer.next_page_token

        return pages(fetch)

    def followed_height(self) -> int:
        """The last block the node has followed: its history holds every block up to it."""
        request = pb.ListHistoryRequest(page_size=1)
        return unary(self._stub.ListHistory, request, self._timeout).height

    def payment(self, *, transfer_id: bytes = b"", request_id: str = "") -> pb.Payment:
        request = (pb.GetPaymentRequest(transfer_id=transfer_id) if transfer_id
                   else pb.GetPaymentRequest(request_id=request_id))
        return unary(self._stub.GetPayment, request, self._timeout).payment

    def cancel(self, transfer_id: bytes) -> pb.CancelPaymentResponse:
        return unary(self._stub.CancelPayment, pb.CancelPaymentRequest(transfer_id=transfer_id),
                     COMMIT_TIMEOUT_S)

    def hold(self, transfer_id: bytes) -> pb.HoldPaymentResponse:
        return unary(self._stub.HoldPayment, pb.HoldPaymentRequest(transfer_id=transfer_id),
                     COMMIT_TIMEOUT_S)

    def release(self, transfer_id: bytes) -> pb.ReleasePaymentResponse:
        return unary(self._stub.ReleasePayment,
                     pb.ReleasePaymentRequest(transfer_id=transfer_id), COMMIT_TIMEOUT_S)

    def reprioritise(self, transfer_id: bytes, priority: int) -> pb.ReprioritisePaymentResponse:
        request = pb.ReprioritisePaymentRequest(transfer_id=transfer_id, priority=priority)
        return unary(self._stub.ReprioritisePayment, request, COMMIT_TIMEOUT_S)

    def redeem(self, amount: int, collateral_ref: str, request_id: str = "") -> common_pb2.Commit:
        request = pb.RedeemRequest(request_id=request_id or new_request_id(), amount=amount,
                                   collateral_ref=collateral_ref)
        return unary(self._stub.Redeem, request, COMMIT_TIMEOUT_S).commit

    def set_limit(self, amount: int = 0, *, counterparty: str = "",
                  remove: bool = False) -> pb.SetLimitResponse:
        """Set (or with ``remove`` lift) the bilateral limit toward ``counterparty``, or
        the multilateral one when it is empty; waits for the block."""
        request = pb.SetLimitRequest(counterparty=counterparty, amount=amount, remove=remove)
        return unary(self._stub.SetLimit, request, COMMIT_TIMEOUT_S)

    def limits(self) -> common_pb2.SettlementDay:
        """This bank's limits, positions and figures for the current and the last day."""
        return self.balance().day

    def watch(self, *, from_height: int = 0, direction: int = pb.DIRECTION_UNSPECIFIED,
              timeout: float | None = None) -> Iterator[pb.WatchSettlementsResponse]:
        """Settlement events as blocks commit; open-ended unless ``timeout`` is given."""
        request = pb.WatchSettlementsRequest(from_height=from_height, direction=direction)
        return stream(self._stub.WatchSettlements, request, timeout)
