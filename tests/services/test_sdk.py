"""The SDK retries UNAVAILABLE with the same request_id, so a retry never pays twice."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator

import grpc
import pytest
from straits.bank.v1 import bank_pb2, bank_pb2_grpc

from clients.sdk import ApiError, BankClient, RetryPolicy, open_channel
from ledger.roles import Role
from services.common.errors import InvalidRequestError, UnavailableError
from services.common.server import ServerSettings, Service, create_server
from tests.services.conftest import Pki

FAILURES_BEFORE_SUCCESS = 2


class FlakyBankNode(bank_pb2_grpc.BankServiceServicer):
    """Fails the first attempts of each request with UNAVAILABLE, as a node that cannot
    reach a validator would; pays once per request_id, as the real node's dedupe does."""

    def __init__(self) -> None:
        self.attempts: Counter[str] = Counter()
        self.paid: Counter[str] = Counter()

    def SendTransfer(self, request, context):
        transfer = request.transfer
        self.attempts[transfer.request_id] += 1
        if transfer.amount <= 0:
            raise InvalidRequestError(f"expected an amount > 0, got {transfer.amount}",
                                      field="transfer.amount")
        if self.attempts[transfer.request_id] <= FAILURES_BEFORE_SUCCESS:
            raise UnavailableError("expected a reachable validator, got none")
        if not self.paid[transfer.request_id]:
            self.paid[transfer.request_id] += 1
        return bank_pb2.SendTransferResponse(payment=bank_pb2.Payment(
            transfer_id=hashlib.sha256(transfer.request_id.encode()).digest(),
            request_id=transfer.request_id, payee=transfer.payee, amount=transfer.amount,
            status=bank_pb2.PAYMENT_STATUS_PENDING))


@pytest.fixture(scope="module")
def flaky_bank(pki: Pki) -> Iterator[tuple[FlakyBankNode, BankClient]]:
    node = FlakyBankNode()
    files = pki.issue("flaky-bank-a-node", "bank-a", Role.BANK)
    server, port = create_server(
        ServerSettings("bank-a", "127.0.0.1:0", files, max_workers=2),
        [Service("straits.bank.v1.BankService",
                 lambda s: bank_pb2_grpc.add_BankServiceServicer_to_server(node, s))])
    server.start()
    client_files = pki.issue("sdk-client", "bank-a", Role.CLIENT)
    channel = open_channel(f"127.0.0.1:{port}", client_files,
                           RetryPolicy(initial_backoff_s=0.01, max_backoff_s=0.05))
    yield node, BankClient(channel)
    channel.close()
    server.stop(grace=None)


def test_send_survives_unavailable_with_one_request_id(flaky_bank) -> None:
    node, bank = flaky_bank
    payment = bank.send("bank-b", 12_500, reference="invoice 42")
    assert payment.request_id, "the SDK must draw a request_id before the first attempt"
    assert node.attempts[payment.request_id] == FAILURES_BEFORE_SUCCESS + 1, \
        "every attempt must carry the same request_id"
    assert node.paid[payment.request_id] == 1


def test_invalid_argument_is_not_retried_and_names_the_field(flaky_bank) -> None:
    node, bank = flaky_bank
    with pytest.raises(ApiError) as refused:
        bank.send("bank-b", -5, request_id="negative-1")
    assert (refused.value.code, refused.value.reason, refused.value.field) == (
        grpc.StatusCode.INVALID_ARGUMENT, "invalid_request", "transfer.amount")
    assert node.attempts["negative-1"] == 1, "only UNAVAILABLE may be retried"
