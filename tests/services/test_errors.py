"""Core errors leave the node as the status the one table gives them, with details."""

from __future__ import annotations

import inspect

import grpc
import pytest
from straits.validator.v1 import validator_pb2, validator_pb2_grpc

from ledger import errors as core
from ledger.roles import Role
from services.common import errors as service_errors
from services.common.errors import STATUS_CODES, status_code_of, to_error_proto
from tests.services.conftest import Pki
from wire.status import details_of

C = grpc.StatusCode


def error_classes() -> list[type[core.StraitsError]]:
    found = []
    for module in (core, service_errors):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, core.StraitsError) and cls.__module__ == module.__name__:
                found.append(cls)
    return found


@pytest.mark.parametrize("cls", error_classes(), ids=lambda c: c.__name__)
def test_every_error_class_has_its_own_row(cls: type[core.StraitsError]) -> None:
    assert cls in STATUS_CODES, f"{cls.__name__} needs a row in services.common.errors.STATUS_CODES"


def make(cls: type[core.StraitsError]) -> core.StraitsError:
    if cls is core.QuorumError:
        return cls(valid=2, needed=3)
    return cls("expected something, got something else", field="some.field")


@pytest.mark.parametrize(("cls", "code"), [
    (core.MalformedTransactionError, C.INVALID_ARGUMENT),
    (core.BadSignatureError, C.UNAUTHENTICATED),
    (core.ReplayError, C.ALREADY_EXISTS),
    (core.ExpiredError, C.FAILED_PRECONDITION),
    (core.NotPermittedError, C.PERMISSION_DENIED),
    (core.InsufficientFundsError, C.FAILED_PRECONDITION),
    (core.UnknownAccountError, C.NOT_FOUND),
    (core.AmountOverflowError, C.OUT_OF_RANGE),
    (core.QuorumError, C.INVALID_ARGUMENT),
    (service_errors.OverloadedError, C.RESOURCE_EXHAUSTED),
    (service_errors.UnavailableError, C.UNAVAILABLE),
    (service_errors.DuplicateRequestError, C.ALREADY_EXISTS),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_status_code_of_each_error(cls: type[core.StraitsError], code: grpc.StatusCode) -> None:
    assert status_code_of(make(cls)) is code


def test_an_unlisted_subclass_takes_its_nearest_ancestors_row() -> None:
    class PayeeClosedError(core.SuspendedError):
        code = "payee_closed"

    assert status_code_of(PayeeClosedError("closed")) is C.FAILED_PRECONDITION


def test_batch_item_error_carries_code_reason_field_and_detail() -> None:
    item = to_error_proto(core.BadSignatureError("expected a valid signature", field="signature"))
    assert (item.status_code, item.reason, item.field, item.detail) == (
        C.UNAUTHENTICATED.value[0], "bad_signature", "signature", "expected a valid signature")


def test_unknown_account_over_the_wire_is_not_found_naming_the_field(pki: Pki, channel_for):
    files = pki.issue("regulator-lookup", "regulator", Role.REGULATOR)
    stub = validator_pb2_grpc.ValidatorServiceStub(channel_for(files))
    with pytest.raises(grpc.RpcError) as refused:
        stub.GetAccount(validator_pb2.GetAccountRequest(account="bank-zz"), timeout=10)
    details = details_of(refused.value)
    assert (details.code, details.reason, details.field) == (
        C.NOT_FOUND, "unknown_account", "account")
    assert "bank-zz" in details.message


def test_error_raised_mid_stream_ends_the_stream_with_its_status(pki: Pki, channel_for):
    files = pki.issue("regulator-follow", "regulator", Role.REGULATOR)
    stub = validator_pb2_grpc.ValidatorServiceStub(channel_for(files))
    received = []
    with pytest.raises(grpc.RpcError) as ended:
        for block in stub.StreamBlocks(validator_pb2.StreamBlocksRequest(), timeout=10):
            received.append(block)
    assert len(received) == 1, "the block sent before the error must arrive"
    assert details_of(ended.value).code is C.UNAVAILABLE


def test_malformed_request_bytes_are_invalid_argument_not_internal(pki: Pki, channel_for):
    files = pki.issue("regulator-garbage", "regulator", Role.REGULATOR)
    raw = channel_for(files).unary_unary("/straits.validator.v1.ValidatorService/GetAccount")
    with pytest.raises(grpc.RpcError) as refused:
        raw(b"\xff\xff\xff", timeout=10)
    details = details_of(refused.value)
    assert (details.code, details.reason) == (C.INVALID_ARGUMENT, "malformed"), details.message


def test_caller_without_the_role_is_denied_before_its_bytes_are_judged(pki: Pki, channel_for):
    files = pki.issue("bank-a-garbage", "bank-a", Role.BANK)
    raw = channel_for(files).unary_unary(
        "/straits.central_bank.v1.CentralBankService/GetTotalSupply")
    with pytest.raises(grpc.RpcError) as refused:
        raw(b"\xff\xff\xff", timeout=10)
    assert details_of(refused.value).code is C.PERMISSION_DENIED
