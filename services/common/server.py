"""One gRPC server per node: mutual TLS, interceptors, health and reflection.

``create_server`` builds and binds a server without starting it and returns the
bound port, so tests bind port 0 and a node runtime decides when to ``start()``.
Every server gets, in order, the auth interceptor (the caller's certificate against
``services.common.auth.RULES``) and the error interceptor (a ``StraitsError`` leaves as its
status from ``services.common.errors``; malformed requests are INVALID_ARGUMENT), the
standard health service (every registered service SERVING unless the caller passes
its own health servicer to steer) and server reflection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.auth import AuthInterceptor, Membership
from services.common.errors import ErrorInterceptor, UnavailableError
from services.common.pki import load_certificate
from services.common.revocation import RevocationList
from wire.tls import TlsFiles, server_credentials

# Large enough for a batch of a few thousand transfers, small enough to bound memory.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Service:
    """A servicer to register: its full name (for health and reflection) and how."""

    name: str
    register: Callable[[grpc.Server], None]


@dataclass(frozen=True)
class ServerSettings:
    participant_id: str  # the participant this node acts for; its clients are served
    listen: str
    tls: TlsFiles
    max_workers: int = 16
    revocations: Path | None = None  # the CA's revocation list, reloaded as it changes


def create_server(
    settings: ServerSettings,
    services: Sequence[Service],
    health_servicer: health.HealthServicer | None = None,
    membership: Membership | None = None,
) -> tuple[grpc.Server, int]:
    revocations = RevocationList(settings.revocations, load_certificate(settings.tls.ca))
    auth = AuthInterceptor(settings.participant_id, revocations=revocations,
                           membership=membership)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.max_workers),
        # The auth check runs first, so a caller who may not call a method learns
        # nothing from it, not even whether its request parsed.
        interceptors=[auth, ErrorInterceptor()],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    for service in services:
        service.register(server)
    if health_servicer is None:
        health_servicer = health.HealthServicer()
        for service in services:
            health_servicer.set(service.name, health_pb2.HealthCheckResponse.SERVING)
        health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [s.name for s in services]
    names += [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server)
    try:
        port = server.add_secure_port(settings.listen, server_credentials(settings.tls))
    except RuntimeError as exc:
        raise UnavailableError(f"expected to bind {settings.listen}: {exc}",
                               field="listen") from exc
    return server, port
