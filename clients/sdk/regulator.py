"""``RegulatorClient``: read-only access to a validator (``ValidatorService``).

Also what bank and central-bank tools use to read a validator directly: the
validator scopes the answers to what the caller's certificate may see.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
from straits.common.v1 import common_pb2
from straits.validator.v1 import validator_pb2 as pb
from straits.validator.v1 import validator_pb2_grpc

from clients.sdk.channel import DEFAULT_TIMEOUT_S, pages, stream, unary


class RegulatorClient:
    def __init__(self, channel: grpc.Channel, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self._stub = validator_pb2_grpc.ValidatorServiceStub(channel)
        self._timeout = timeout

    def head(self) -> pb.GetHeadResponse:
        return unary(self._stub.GetHead, pb.GetHeadRequest(), self._timeout)

    def account(self, account: str) -> common_pb2.Account:
        return unary(self._stub.GetAccount, pb.GetAccountRequest(account=account),
                     self._timeout).account

    def accounts(self, page_size: int = 0) -> Iterator[common_pb2.Account]:
        def fetch(token: str) -> tuple[list[common_pb2.Account], str]:
            request = pb.GetAccountsRequest(page_size=page_size, page_token=token)
            answer = unary(self._stub.GetAccounts, request, self._timeout)
            return list(answer.accounts), answer.next_page_token

        return pages(fetch)

    def gridlock(self) -> common_pb2.Gridlock:
        """Whether anything waits in queues, and how much, over every bank."""
        request = pb.GetAccountsRequest(page_size=1)
        return unary(self._stub.GetAccounts, request, self._timeout).gridlock

    def transaction(self, transaction_id: bytes) -> pb.GetTransactionResponse:
        return unary(self._stub.GetTransaction,
                     pb.GetTransactionRequest(transaction_id=transaction_id), self._timeout)

    def blocks(self, from_height: int, limit: int = 0) -> list[pb.BlockView]:
        request = pb.GetBlocksRequest(from_height=from_height, limit=limit)
        return list(unary(self._stub.GetBlocks, request, self._timeout).blocks)

    def follow(self, from_height: int) -> Iterator[pb.BlockView]:
        for answer in stream(self._stub.StreamBlocks,
                             pb.StreamBlocksRequest(from_height=from_height)):
            yield answer.block
