"""``straits health --config node.toml``: is this node serving? For container health checks.

Asks the node's standard gRPC health service over mutual TLS with the node's own
certificate, at its listen port on loopback (a node listening on all interfaces is
reached there too). Exits 0 when it answers SERVING, 1 otherwise: what a container
HEALTHCHECK or a Kubernetes exec probe expects.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.config import load_config
from wire.tls import secure_channel

_ANY_ADDRESS = ("0.0.0.0", "::", "[::]", "")


def register(commands: argparse._SubParsersAction) -> None:
    health = commands.add_parser("health", help="exit 0 if the node answers SERVING")
    health.add_argument("--config", type=Path, required=True, help="the node's node.toml")
    health.add_argument("--timeout", type=float, default=3.0, help="seconds to wait")
    health.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    host, _, port = config.listen.rpartition(":")
    address = f"127.0.0.1:{port}" if host in _ANY_ADDRESS else config.listen
    with secure_channel(address, config.tls) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=args.timeout)
        except grpc.RpcError as error:
            print(f"{config.id}: {error.code().name}")
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    print(f"{config.id}: {status}")
    return 0 if response.status == health_pb2.HealthCheckResponse.SERVING else 1
