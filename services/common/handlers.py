"""Wrapping a gRPC method handler's behaviour, whatever its streaming shape.

A server interceptor only sees the method name; the caller's certificate and the
servicer's exceptions are reachable only inside the behaviour. Interceptors use
``wrap_handler`` to put a guard around it while keeping the (de)serialisers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

Behavior = Callable[..., Any]
# Takes a behaviour and whether it streams responses; returns the guarded behaviour.
Guard = Callable[[Behavior, bool], Behavior]

_FACTORIES = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def wrap_handler(
    handler: grpc.RpcMethodHandler,
    guard: Guard,
    request_deserializer: Callable[[bytes], Any] | None = None,
) -> grpc.RpcMethodHandler:
    """``guard`` around the behaviour; ``request_deserializer`` replaces the handler's."""
    shape = (handler.request_streaming, handler.response_streaming)
    attribute, factory = _FACTORIES[shape]
    behavior = getattr(handler, attribute)
    return factory(
        guard(behavior, handler.response_streaming),
        request_deserializer=request_deserializer or handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
