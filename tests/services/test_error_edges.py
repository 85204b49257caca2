"""Bad input at the edges of each field's range gets a clear INVALID_ARGUMENT naming the
field, never UNKNOWN or a database message; echoed values are clipped; anything a node
did not expect leaves as INTERNAL with an error id that the node's log carries.

Over real gRPC with mutual TLS against a running in-process network (4 validators,
the central bank, 2 banks, SQLite files), with the clients' own certificates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import grpc
import pytest
from straits.bank.v1 import bank_pb2 as pb
from straits.bank.v1 import bank_pb2_grpc as pb_grpc
from straits.validator.v1 import validator_pb2 as validator_pb
from straits.validator.v1 import validator_pb2_grpc as validator_grpc

from clients.sdk import ApiError
from ledger.errors import StoreError
from ledger.transaction import INT64_MAX
from tests.bank.network import Network, running_network
from wire.status import ErrorDetails, details_of

BIG_ECHO = 4096  # an error message may say what came, but never much more than this


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with running_network(tmp_path_factory.mktemp("error-edges"), banks=2) as network:
        yield network


@pytest.fixture(scope="module")
def bank(network: Network) -> pb_grpc.BankServiceStub:
    return pb_grpc.BankServiceStub(network.channel("bank-a", network.client_tls("bank-a")))


@pytest.fixture(scope="module")
def validator(network: Network) -> validator_grpc.ValidatorServiceStub:
    return validator_grpc.ValidatorServiceStub(
        network.channel("validator-2", network.layout.regulator)
    )


def failure(call: Callable[[], object]) -> ErrorDetails:
    with pytest.raises(grpc.RpcError) as failed:
        call()
    return details_of(failed.value)


def test_watching_from_the_largest_uint64_height_is_an_invalid_argument(bank) -> None:
    stream = bank.WatchSettlements(pb.WatchSettlementsRequest(from_height=2**64 - 1), timeout=10)

    error = failure(lambda: next(stream))

    assert (error.code, error.reason, error.field) == (
        grpc.StatusCode.INVALID_ARGUMENT, "invalid_request", "from_height"
    ), error


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ListHistoryRequest(statuses=[pb.PAYMENT_STATUS_SETTLED, 99]), "statuses"),
        (pb.ListHistoryRequest(direction=7), "direction"),
        (pb.ListHistoryRequest(kinds=[pb.PAYMENT_KIND_ISSUANCE, 9]), "kinds"),
        (pb.ListHistoryRequest(kinds=[pb.PAYMENT_KIND_UNSPECIFIED]), "kinds"),
        (pb.ListHistoryRequest(to_height=2**63), "to_height"),
        (pb.ListHistoryRequest(from_time_ms=2**64 - 1), "from_time_ms"),
        (pb.ListHistoryRequest(page_token="9" * 30), "page_token"),
        (pb.ListHistoryRequest(page_token="9" * 5000), "page_token"),
    ],
)
def test_history_filters_out_of_range_are_refused_naming_the_field(
    bank, request_: pb.ListHistoryRequest, field: str
) -> None:
    error = failure(lambda: bank.ListHistory(request_, timeout=10))

    assert (error.code, error.field) == (grpc.StatusCode.INVALID_ARGUMENT, field), error
    assert len(error.message) < BIG_ECHO


def test_an_unknown_priority_in_a_transfer_is_refused_naming_the_field(bank) -> None:
    request = pb.SendTransferRequest(
        transfer=pb.TransferInstruction(payee="bank-b", amount=1, priority=42, request_id="p42")
    )

    error = failure(lambda: bank.SendTransfer(request, timeout=10))

    assert (error.code, error.field) == (grpc.StatusCode.INVALID_ARGUMENT, "transfer.priority")


def test_a_10000_character_payee_is_refused_with_its_name_clipped(bank) -> None:
    request = pb.SendTransferRequest(
        transfer=pb.TransferInstruction(payee="z" * 10_000, amount=1, request_id="long-payee")
    )

    error = failure(lambda: bank.SendTransfer(request, timeout=10))

    assert (error.code, error.field) == (grpc.StatusCode.INVALID_ARGUMENT, "transfer.payee")
    assert "zzzz" in error.message and len(error.message) < BIG_ECHO


def test_a_one_mebibyte_transaction_id_is_refused_without_echoing_it(validator) -> None:
    request = validator_pb.GetTransactionRequest(transaction_id=b"\x07" * (1 << 20))

    error = failure(lambda: validator.GetTransaction(request, timeout=10))

    assert (error.code, error.field) == (grpc.StatusCode.INVALID_ARGUMENT, "transaction_id")
    assert len(error.message) < BIG_ECHO


def test_an_unexpected_exception_leaves_as_internal_with_the_error_id_the_log_carries(
    network: Network, bank, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise RuntimeError("secret table name payments_v7")

    monkeypatch.setattr(network.banks["bank-a"].book, "queue", broken)

    with caplog.at_level(logging.ERROR, logger="services.common.errors"):
        error = failure(lambda: bank.ListQueue(pb.ListQueueRequest(), timeout=10))

    assert (error.code, error.reason) == (grpc.StatusCode.INTERNAL, "internal"), error
    assert error.error_id and error.error_id in error.message
    assert "payments_v7" not in error.message
    logged = [r for r in caplog.records if error.error_id in r.getMessage()]
    assert logged and "payments_v7" in str(logged[0].exc_info[1]), caplog.text


def test_a_store_failure_leaves_as_internal_with_an_error_id(
    network: Network, bank, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing() -> None:
        raise StoreError("disk I/O error")

    monkeypatch.setattr(network.banks["bank-a"].book, "queue", failing)

    with caplog.at_level(logging.ERROR, logger="services.common.errors"):
        error = failure(lambda: bank.ListQueue(pb.ListQueueRequest(), timeout=10))

    assert (error.code, error.reason) == (grpc.StatusCode.INTERNAL, "store"), error
    assert error.error_id and any(error.error_id in r.getMessage() for r in caplog.records)


def test_queueing_int64_max_twice_is_refused_as_overflow_and_every_read_still_answers(
    network: Network,
) -> None:
    bank_a = network.bank("bank-a")
    first = bank_a.send("bank-b", INT64_MAX, queue_always=True, request_id="huge-1", wait=True)
    with pytest.raises(ApiError) as second:
        bank_a.send("bank-b", INT64_MAX, queue_always=True, request_id="huge-2", wait=True)

    assert first.status == pb.PAYMENT_STATUS_QUEUED, first
    assert (second.value.code, second.value.reason) == (grpc.StatusCode.OUT_OF_RANGE, "overflow")
    assert "queued-out" in second.value.message
    assert bank_a.payment(request_id="huge-2").status == pb.PAYMENT_STATUS_REJECTED
    assert bank_a.balance().queued_out == INT64_MAX
    assert network.bank("bank-b").balance().queued_in == INT64_MAX
    positions = {a.id: a for a in network.central_bank_client().positions()}
    assert positions["bank-b"].position == INT64_MAX
    assert {a.id for a in network.regulator().accounts()} >= {"bank-a", "bank-b"}
    bank_a.cancel(first.transfer_id)
