"""Errors over the wire: the one table from Straits errors to gRPC status codes.

Servicers raise errors of the ``ledger.errors`` hierarchy (or the service-level ones
below, which share its base); ``ErrorInterceptor`` turns them into a gRPC status
with rich details, so no servicer builds a status by hand. A call fails with
``google.rpc.Status`` carrying an ``ErrorInfo`` (reason = the error's stable code,
domain ``straits``, metadata ``field``) and, when a field is to blame, a
``BadRequest`` naming it. Items of a batch are answered with ``to_error_proto``
from the same table instead. A request whose bytes do not parse is answered
INVALID_ARGUMENT (reason ``malformed``), not gRPC's default INTERNAL, and one whose
fields leave their type's range (``services.common.request_fields``: a uint64 past int64, an
undeclared enum value) INVALID_ARGUMENT (reason ``invalid_request``) naming the field.

Echoed values are clipped (``MAX_ECHO`` characters a message or detail), so a 1 MiB bad
id cannot swell a status past the metadata limit. Anything else a servicer raises,
and every error the table maps to INTERNAL, leaves as INTERNAL with an error id
(ErrorInfo metadata ``error_id``, also in the message) that the node's log carries
next to the traceback: the client learns nothing of the node's insides, the operator
finds the failure from what the client reports.

The codes follow gRPC's guidance: INVALID_ARGUMENT whatever the state,
FAILED_PRECONDITION when the state refuses it, ALREADY_EXISTS for a repeat,
NOT_FOUND for an unknown entity, PERMISSION_DENIED for an authenticated caller
doing what its role may not, UNAUTHENTICATED for missing or invalid credentials
(a transaction's signature is its credential), RESOURCE_EXHAUSTED for back-pressure,
UNAVAILABLE when retrying later may succeed.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError as ProtoDecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from straits.common.v1 import common_pb2 as common_pb

from ledger import errors as core
from services.common.handlers import wrap_handler
from services.common.request_fields import field_violation
from wire.errors import (
    AccessDeniedError,
    BadCertificateError,
    ConfigError,
    DuplicateRequestError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    UnavailableError,
)
from wire.status import DOMAIN

__all__ = [
    "AccessDeniedError",
    "BadCertificateError",
    "ConfigError",
    "DuplicateRequestError",
    "InvalidRequestError",
    "NotFoundError",
    "OverloadedError",
    "UnavailableError",
]

log = logging.getLogger(__name__)

MAX_ECHO = 1024


class InternalError(core.StraitsError):
    """What a client is told of an exception the node did not expect (details in its log)."""

    code = "internal"


S = grpc.StatusCode

# The one table. Every error class has its own row, so adding a class forces a decision
# (tests/services/test_errors.py checks that none is missing).
STATUS_CODES: dict[type[core.StraitsError], grpc.StatusCode] = {
    core.StraitsError: S.INTERNAL,
    core.DecodeError: S.INVALID_ARGUMENT,
    core.GenesisError: S.FAILED_PRECONDITION,
    core.BadKeyError: S.INVALID_ARGUMENT,
    core.InadmissibleError: S.INVALID_ARGUMENT,
    core.WrongChainError: S.INVALID_ARGUMENT,
    core.BadSignatureError: S.UNAUTHENTICATED,
    core.UnknownSignerError: S.UNAUTHENTICATED,
    core.ReplayError: S.ALREADY_EXISTS,
    core.ExpiredError: S.FAILED_PRECONDITION,
    core.MalformedTransactionError: S.INVALID_ARGUMENT,
    core.RejectedError: S.FAILED_PRECONDITION,
    core.NotPermittedError: S.PERMISSION_DENIED,
    core.InvalidAmountError: S.INVALID_ARGUMENT,
    core.InsufficientFundsError: S.FAILED_PRECONDITION,
    core.UnknownAccountError: S.NOT_FOUND,
    core.SuspendedError: S.FAILED_PRECONDITION,
    core.AlreadyExistsError: S.ALREADY_EXISTS,
    core.NotQueuedError: S.FAILED_PRECONDITION,
    core.AmountOverflowError: S.OUT_OF_RANGE,
    core.InvalidGovernanceError: S.FAILED_PRECONDITION,
    core.InvalidBlockError: S.INVALID_ARGUMENT,
    core.QuorumError: S.INVALID_ARGUMENT,
    core.StoreError: S.INTERNAL,
    core.SchemaVersionError: S.FAILED_PRECONDITION,
    core.ConsensusError: S.INTERNAL,
    core.InvalidMessageError: S.INVALID_ARGUMENT,
    core.DoubleSignError: S.FAILED_PRECONDITION,
    ConfigError: S.FAILED_PRECONDITION,
    BadCertificateError: S.UNAUTHENTICATED,
    AccessDeniedError: S.PERMISSION_DENIED,
    InvalidRequestError: S.INVALID_ARGUMENT,
    NotFoundError: S.NOT_FOUND,
    DuplicateRequestError: S.ALREADY_EXISTS,
    OverloadedError: S.RESOURCE_EXHAUSTED,
    UnavailableError: S.UNAVAILABLE,
    InternalError: S.INTERNAL,
}


def status_code_of(error: core.StraitsError) -> grpc.StatusCode:
    """The row of the error's own class, else of its nearest ancestor in the table."""
    for cls in type(error).__mro__:
        code = STATUS_CODES.get(cls)
        if code is not None:
            return code
    return S.INTERNAL


def _rpc_code(code: grpc.StatusCode) -> int:
    """The google.rpc.Code number, which grpc.StatusCode carries as the first of its value."""
    return int(code.value[0])


def clip(text: str, limit: int = MAX_ECHO) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def to_rpc_status(error: core.StraitsError, error_id: str = "") -> grpc.Status:
    """The status a call fails with: code, message, and ErrorInfo/BadRequest details."""
    code = status_code_of(error)
    info = error_details_pb2.ErrorInfo(reason=error.code, domain=DOMAIN)
    details = [info]
    message = clip(str(error))
    if error_id:
        info.metadata["error_id"] = error_id
        message += f" (error id {error_id})"
    if error.field:
        field = clip(error.field, 200)
        info.metadata["field"] = field
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=field, description=clip(error.detail)
                    )
                ]
            )
        )
    packed = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)
        packed.append(holder)
    return rpc_status.to_status(
        status_pb2.Status(code=_rpc_code(code), message=message, details=packed)
    )


def to_error_proto(error: core.StraitsError) -> common_pb.Error:
    """The per-item answer inside a batch response, from the same table."""
    return common_pb.Error(
        status_code=_rpc_code(status_code_of(error)),
        reason=error.code,
        field=clip(error.field or "", 200),
        detail=clip(error.detail),
    )


def abort(context: grpc.ServicerContext, error: core.StraitsError, error_id: str = "") -> NoReturn:
    context.abort_with_status(to_rpc_status(error, error_id))
    # grpc's abort always raises; this line only tells type checkers so.
    raise RuntimeError("abort_with_status returned")


@dataclass(frozen=True)
class _Undecodable:
    """Stands in for a request whose bytes did not parse, so the guard can answer it."""

    error: core.DecodeError


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    # gRPC answers a request that fails to deserialise with INTERNAL and no details;
    # malformed input is the caller's fault, so it must be INVALID_ARGUMENT instead.
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except ProtoDecodeError as exc:
            return _Undecodable(core.DecodeError(f"expected a valid request message: {exc}"))

    return deserialize


def _decoded(request: Any) -> Any:
    if isinstance(request, _Undecodable):
        raise request.error
    violation = field_violation(request)
    if violation is not None:
        field, detail = violation
        raise InvalidRequestError(detail, field=field)
    return request


def _decoded_stream(requests: Iterator[Any]) -> Iterator[Any]:
    for request in requests:
        yield _decoded(request)


def _fail(context: grpc.ServicerContext, error: Exception, method: str) -> NoReturn:
    if context.code() is not None:
        # An abort already in flight (grpc raises to unwind it): let it leave as it is.
        raise error
    if isinstance(error, core.StraitsError) and status_code_of(error) != S.INTERNAL:
        abort(context, error)
    error_id = secrets.token_hex(8)
    log.error("error id %s: %s failed", error_id, method, exc_info=error)
    if not isinstance(error, core.StraitsError):
        error = InternalError("the node failed to answer; its log has the details")
    abort(context, error, error_id)


def _translating(method: str) -> Callable[[Callable[..., Any], bool], Callable[..., Any]]:
    def guard(behavior: Callable[..., Any], streaming: bool) -> Callable[..., Any]:
        def requests_of(request: Any) -> Any:
            if isinstance(request, Iterator):
                return _decoded_stream(request)
            return _decoded(request)

        if streaming:

            def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                try:
                    yield from behavior(requests_of(request), context)
                except Exception as error:
                    _fail(context, error, method)

            return stream

        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                return behavior(requests_of(request), context)
            except Exception as error:
                _fail(context, error, method)

        return unary

    return guard


class ErrorInterceptor(grpc.ServerInterceptor):
    """Turns a ``StraitsError`` escaping any servicer into its status from the table."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        return wrap_handler(
            handler,
            _translating(handler_call_details.method),
            _tolerant(handler.request_deserializer),
        )

