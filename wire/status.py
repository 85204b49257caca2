"""Reading a failed call's rich status: its code, stable reason and the field to blame.

Servers attach a ``google.rpc.Status`` with an ``ErrorInfo`` (reason, domain
``straits``, metadata ``field``) to every failure; the SDK, the CLI and a participant
node talking to validators read it back with ``details_of``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

DOMAIN = "straits"


@dataclass(frozen=True)
class ErrorDetails:
    """What a client learns from a failed call: for SDKs, the CLI and tests."""

    code: grpc.StatusCode
    reason: str
    field: str
    message: str
    error_id: str = ""  # an INTERNAL error's id, which the node's log also carries


def details_of(error: grpc.RpcError) -> ErrorDetails:
    """Reads the rich status of a failed call; reason is empty when the server sent none."""
    call: Any = error
    reason = field = error_id = ""
    status = rpc_status.from_call(call)
    if status is not None:
        for holder in status.details:
            if holder.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                holder.Unpack(info)
                reason, field = info.reason, info.metadata.get("field", "")
                error_id = info.metadata.get("error_id", "")
    return ErrorDetails(code=call.code(), reason=reason, field=field,
                        message=call.details() or "", error_id=error_id)
