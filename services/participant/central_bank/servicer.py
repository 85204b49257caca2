"""CentralBankService servicer: decode, ask the central bank's node (a ``CentralBankDesk``), answer.

Only the central bank's own clients reach it (``services.common.auth``). Every writing RPC
answers once a block carried its transaction, with the ``Commit``. Validators check
the business rules when they admit a transaction, so a refusal usually fails the
call with its status (ALREADY_EXISTS, FAILED_PRECONDITION...); a commit whose
receipt says REJECTED comes only when the state changed between admission and block.
"""

from __future__ import annotations

from typing import Protocol

import grpc
from straits.central_bank.v1 import central_bank_pb2 as pb
from straits.central_bank.v1 import central_bank_pb2_grpc as pb_grpc
from straits.common.v1 import common_pb2 as common_pb
from straits.ledger.v1 import transaction_pb2 as tx_pb
from straits.validator.v1 import validator_pb2 as validator_pb

from services.participant.node import remaining


class CentralBankDesk(Protocol):
    """What the servicer asks of the central bank's node (``CentralBankNode`` provides it)."""

    def issue(self, request: pb.IssueRequest, timeout: float) -> common_pb.Commit: ...
    def present_redemption(
        self, signed: tx_pb.SignedTransaction, timeout: float
    ) -> common_pb.Commit: ...
    def admit(self, request: pb.AdmitBankRequest, timeout: float) -> common_pb.Commit: ...
    def suspend(self, bank: str, timeout: float) -> common_pb.Commit: ...
    def unsuspend(self, bank: str, timeout: float) -> common_pb.Commit: ...
    def change_validators(
        self, request: pb.ProposeValidatorChangeRequest, timeout: float
    ) -> common_pb.Commit: ...
    def total_supply(self) -> pb.GetTotalSupplyResponse: ...
    def positions(self, page_size: int, page_token: str) -> validator_pb.GetAccountsResponse: ...


class CentralBankServicer(pb_grpc.CentralBankServiceServicer):
    def __init__(self, node: CentralBankDesk) -> None:
        self._node = node

    def Issue(self, request: pb.IssueRequest, context: grpc.ServicerContext) -> pb.IssueResponse:
        return pb.IssueResponse(commit=self._node.issue(request, remaining(context)))

    def Redeem(self, request: pb.RedeemRequest, context: grpc.ServicerContext) -> pb.RedeemResponse:
        return pb.RedeemResponse(
            commit=self._node.present_redemption(request.redemption, remaining(context))
        )

    def AdmitBank(
        self, request: pb.AdmitBankRequest, context: grpc.ServicerContext
    ) -> pb.AdmitBankResponse:
        return pb.AdmitBankResponse(commit=self._node.admit(request, remaining(context)))

    def SuspendBank(
        self, request: pb.SuspendBankRequest, context: grpc.ServicerContext
    ) -> pb.SuspendBankResponse:
        return pb.SuspendBankResponse(commit=self._node.suspend(request.bank, remaining(context)))

    def UnsuspendBank(
        self, request: pb.UnsuspendBankRequest, context: grpc.ServicerContext
    ) -> pb.UnsuspendBankResponse:
        return pb.UnsuspendBankResponse(
            commit=self._node.unsuspend(request.bank, remaining(context))
        )

    def ProposeValidatorChange(
        self, request: pb.ProposeValidatorChangeRequest, context: grpc.ServicerContext
    ) -> pb.ProposeValidatorChangeResponse:
        return pb.ProposeValidatorChangeResponse(
            commit=self._node.change_validators(request, remaining(context))
        )

    def GetTotalSupply(
        self, request: pb.GetTotalSupplyRequest, context: grpc.ServicerContext
    ) -> pb.GetTotalSupplyResponse:
        return self._node.total_supply()

    def ListPositions(
        self, request: pb.ListPositionsRequest, context: grpc.ServicerContext
    ) -> pb.ListPositionsResponse:
        answer = self._node.positions(request.page_size, request.page_token)
        return pb.ListPositionsResponse(
            accounts=answer.accounts,
            next_page_token=answer.next_page_token,
            height=answer.height,
            gridlock=answer.gridlock,
        )

    def CloseDay(
        self, request: pb.CloseDayRequest, context: grpc.ServicerContext
    ) -> pb.CloseDayResponse:
        return pb.CloseDayResponse(commit=self._node.close_day(request.day, remaining(context)))
