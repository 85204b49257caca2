"""The regulator's reads: ``RegulatorClient`` for one validator, ``Regulator`` for all.

``RegulatorClient`` is read-only access to a validator (``ValidatorService``); bank
and central-bank tools use it too, and the validator scopes the answers to what the
caller's certificate may see. ``Regulator`` holds the regulator's certificate and
the network's addresses and reaches whichever node serves a read.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
from straits.central_bank.v1.central_bank_pb2 import GetTotalSupplyResponse
from straits.common.v1 import common_pb2
from straits.validator.v1 import validator_pb2 as pb
from straits.validator.v1 import validator_pb2_grpc

from clients.sdk.bank import BankClient
from clients.sdk.central_bank import CentralBankClient
from clients.sdk.channel import DEFAULT_TIMEOUT_S, open_channel, pages, stream, unary
from clients.sdk.network import BANK, CENTRAL_BANK, VALIDATOR, NetworkIndex
from ledger.errors import expected
from wire.errors import ConfigError


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


class Regulator:
    """The regulator's seat: every read the role may make, over one set of channels.

        regulator = Regulator(NetworkIndex.load("var/local"))
        regulator.positions()              # every account, from a validator
        regulator.supply()                 # issued, redeemed, supply: the central bank's node
        regulator.bank("bank-b").queue()   # any bank's queue and history, on its own node
        regulator.validator().blocks(1)    # whole blocks and transactions

    Everything goes out under the regulator's certificate, so the nodes decide what
    it may do: every read above, and no write (a write fails with PERMISSION_DENIED
    naming the roles allowed). Channels open on first use; ``close()`` closes them.
    """

    def __init__(self, network: NetworkIndex, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.network = network
        self._timeout = timeout
        self._channels: dict[str, grpc.Channel] = {}

    def _channel(self, node_id: str) -> grpc.Channel:
        if node_id not in self._channels:
            node = self.network.node(node_id)
            self._channels[node_id] = open_channel(node.address, self.network.regulator)
        return self._channels[node_id]

    def validator(self, node_id: str = "") -> RegulatorClient:
        """A validator's reads (the first validator unless one is named)."""
        node_id = node_id or self.network.of_kind(VALIDATOR)[0].id
        return RegulatorClient(self._channel(node_id), self._timeout)

    def bank(self, bank: str) -> BankClient:
        """``bank``'s own node, read as the regulator: balance, queue, history, watch."""
        if self.network.node(bank).kind != BANK:
            raise ConfigError(expected(f"a bank ({', '.join(self.network.banks())})", bank),
                              field="bank")
        return BankClient(self._channel(bank), self._timeout)

    def central_bank(self) -> CentralBankClient:
        """The central bank's node, read as the regulator: supply and positions."""
        return CentralBankClient(self._channel(self.network.of_kind(CENTRAL_BANK)[0].id),
                            self._timeout)

    def positions(self) -> list[common_pb2.Account]:
        """Every participant's balance, queued amounts and position, from a validator."""
        return list(self.validator().accounts())

    def supply(self) -> GetTotalSupplyResponse:
        return self.central_bank().total_supply()

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    def __enter__(self) -> Regulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
