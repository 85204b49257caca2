"""``CentralBankClient``: the central bank's client of its node (``CentralBankService``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import grpc
from straits.central_bank.v1 import central_bank_pb2 as pb
from straits.central_bank.v1 import central_bank_pb2_grpc
from straits.common.v1 import common_pb2
from straits.ledger.v1 import transaction_pb2 as tx_pb

from clients.sdk.channel import COMMIT_TIMEOUT_S, DEFAULT_TIMEOUT_S, new_request_id, pages, unary


class CentralBankClient:
    def __init__(self, channel: grpc.Channel, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self._stub = central_bank_pb2_grpc.CentralBankServiceStub(channel)
        self._timeout = timeout

    def issue(self, bank: str, amount: int, collateral_ref: str,
              request_id: str = "") -> common_pb2.Commit:
        request = pb.IssueRequest(request_id=request_id or new_request_id(), bank=bank,
                                  amount=amount, collateral_ref=collateral_ref)
        return unary(self._stub.Issue, request, COMMIT_TIMEOUT_S).commit

    def redeem(self, redemption: tx_pb.SignedTransaction) -> common_pb2.Commit:
        return unary(self._stub.Redeem, pb.RedeemRequest(redemption=redemption),
                     COMMIT_TIMEOUT_S).commit

    def admit_bank(self, bank: str, key: tx_pb.PublicKey, name: str) -> common_pb2.Commit:
        request = pb.AdmitBankRequest(bank=bank, key=key, name=name)
        return unary(self._stub.AdmitBank, request, COMMIT_TIMEOUT_S).commit

    def suspend_bank(self, bank: str) -> common_pb2.Commit:
        return unary(self._stub.SuspendBank, pb.SuspendBankRequest(bank=bank),
                     COMMIT_TIMEOUT_S).commit

    def unsuspend_bank(self, bank: str) -> common_pb2.Commit:
        return unary(self._stub.UnsuspendBank, pb.UnsuspendBankRequest(bank=bank),
                     COMMIT_TIMEOUT_S).commit

    def propose_validators(self, validators: Iterable[tx_pb.Validator],
                           effective_height: int) -> common_pb2.Commit:
        request = pb.ProposeValidatorChangeRequest(validators=list(validators),
                                                   effective_height=effective_height)
        return unary(self._stub.ProposeValidatorChange, request, COMMIT_TIMEOUT_S).commit

    def close_day(self, day: int) -> common_pb2.Commit:
        """Close settlement day ``day`` (the current one), cancelling what is still queued."""
        return unary(self._stub.CloseDay, pb.CloseDayRequest(day=day), COMMIT_TIMEOUT_S).commit

    def gridlock(self) -> common_pb2.Gridlock:
        """Whether anything waits in queues, and how much, over every bank."""
        answer = unary(self._stub.ListPositions, pb.ListPositionsRequest(page_size=1),
                       self._timeout)
        return answer.gridlock

    def total_supply(self) -> pb.GetTotalSupplyResponse:
        return unary(self._stub.GetTotalSupply, pb.GetTotalSupplyRequest(), self._timeout)

    def positions(self, page_size: int = 0) -> Iterator[common_pb2.Account]:
        def fetch(token: str) -> tuple[list[common_pb2.Account], str]:
            request = pb.ListPositionsRequest(page_size=page_size, page_token=token)
            answer = unary(self._stub.ListPositions, request, self._timeout)
            return list(answer.accounts), answer.next_page_token

        return pages(fetch)
