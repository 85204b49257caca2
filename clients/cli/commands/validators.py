"""``straits validators``: the validator set in force, and which validators answer.

Reads ``GetHead`` from the first validator that answers, as the regulator by default
(``--as`` may name any participant with a node certificate in the network directory),
and asks every validator of ``network.json`` for its health.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.cli.output import emit
from clients.cli.seats import EVERYONE
from clients.cli.target import add_node_command, network_index
from clients.sdk import ApiError, RegulatorClient, open_channel
from ledger.errors import expected
from ledger.keys import PublicKey
from ledger.roles import Role
from wire.errors import ConfigError, UnavailableError
from wire.tls import TlsFiles

HEALTH_TIMEOUT_S = 2.0


def register(commands: argparse._SubParsersAction) -> None:
    add_node_command(
        commands, "validators", "the validator set and each validator's health", run_validators,
        seats=EVERYONE,
    )


def _identity(base: Path, index: dict, participant: str) -> TlsFiles:  # type: ignore[type-arg]
    if participant in ("", "regulator"):
        files = index["regulator"]
        return TlsFiles(base / index["ca"], base / files["certificate"], base / files["key"])
    node = next((n for n in index["nodes"] if n["id"] == participant), None)
    if node is None:
        raise ConfigError(
            expected("regulator or a node id of the network", participant), field="as"
        )
    folder = (base / node["config"]).parent
    return TlsFiles(base / index["ca"], folder / "tls.crt", folder / "tls.key")


def _healthy(address: str, tls: TlsFiles) -> str:
    channel = open_channel(address, tls)
    try:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=HEALTH_TIMEOUT_S
        )
        return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status).lower()
    except grpc.RpcError as error:
        return error.code().name.lower()
    finally:
        channel.close()


def run_validators(args: argparse.Namespace) -> int:
    if args.network is None:
        raise ConfigError("expected --network DIR ($STRAITS_NETWORK)", field="network")
    base = Path(args.network)
    index = network_index(base)
    tls = _identity(base, index, args.participant or "")
    addresses = {n["id"]: n["address"] for n in index["nodes"] if n["kind"] == Role.VALIDATOR}
    head = None
    for address in addresses.values():
        channel = open_channel(address, tls)
        try:
            head = RegulatorClient(channel).head()
            break
        except ApiError:
            continue
        finally:
            channel.close()
    if head is None:
        raise UnavailableError(expected("a validator that answers", "none"))
    records = [
        {
            "id": v.id,
            "address": addresses.get(v.id, ""),
            "key": PublicKey.from_proto(v.key).to_text(),
            "health": _healthy(addresses[v.id], tls) if v.id in addresses else "unknown",
            "height": head.height,
        }
        for v in head.validators
    ]
    emit(args, records, ("id", "address", "health", "key"))
    return 0
