"""Channels with deadlines and safe retries, and the one exception clients see.

Retries are gRPC's own (a service config ``retryPolicy``), applied to UNAVAILABLE
only: the server never started the call or could not reach a validator, so sending
the same request again is safe; with a ``request_id`` it is safe even if the first
attempt did reach the ledger. Deadlines cover all attempts of a call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from wire.status import details_of
from wire.tls import TlsFiles, channel_credentials

DEFAULT_TIMEOUT_S = 10.0
# Calls that wait for a block: a few round timeouts, not forever.
COMMIT_TIMEOUT_S = 30.0

R = TypeVar("R")


class ApiError(Exception):
    """A failed call: gRPC status, the server's stable reason and field, its message."""

    def __init__(self, code: grpc.StatusCode, reason: str, field: str, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.reason = reason
        self.field = field
        self.message = message

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> ApiError:
        details = details_of(error)
        return cls(details.code, details.reason, details.field, details.message)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    backoff_multiplier: float = 2.0

    def service_config(self) -> str:
        return json.dumps({"methodConfig": [{
            "name": [{}],  # every method of every service
            "retryPolicy": {
                "maxAttempts": self.max_attempts,
                "initialBackoff": f"{self.initial_backoff_s}s",
                "maxBackoff": f"{self.max_backoff_s}s",
                "backoffMultiplier": self.backoff_multiplier,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }]})


def open_channel(address: str, tls: TlsFiles, retry: RetryPolicy = RetryPolicy()) -> grpc.Channel:
    return grpc.secure_channel(address, channel_credentials(tls), options=[
        ("grpc.enable_retries", 1),
        ("grpc.service_config", retry.service_config()),
    ])


def new_request_id() -> str:
    return uuid.uuid4().hex


def unary(method: Callable[..., R], request: Any, timeout: float = DEFAULT_TIMEOUT_S) -> R:
    try:
        return method(request, timeout=timeout)
    except grpc.RpcError as error:
        raise ApiError.from_rpc_error(error) from None


def stream(method: Callable[..., Iterator[R]], request: Any,
           timeout: float | None = None) -> Iterator[R]:
    """A server stream; no deadline by default, since watching is open-ended."""
    try:
        yield from method(request, timeout=timeout)
    except grpc.RpcError as error:
        raise ApiError.from_rpc_error(error) from None


def pages(fetch: Callable[[str], tuple[list[R], str]]) -> Iterator[R]:
    """Walks ``page_token`` paging: ``fetch(token)`` returns (items, next token)."""
    token = ""
    while True:
        items, token = fetch(token)
        yield from items
        if not token:
            return
