"""Which node a command talks to, and as whom.

Amounts: a command reads the network's currency and decimals from its genesis, found
through the network directory or given with ``--genesis``; ``--minor`` takes and
shows integer minor units instead.

Either a network directory and a participant (``--network DIR --as bank-a``, or the
``STRAITS_NETWORK`` and ``STRAITS_AS`` environment variables), resolved through the
directory's ``network.json`` to the participant's node address and its client
certificate; or everything explicit: ``--address HOST:PORT --cert F --key F --ca F``.

``--as regulator`` takes the regulator's certificate to the node that serves the
read: a bank's own node (``--bank``) for its balance, queue and history, the central
bank's node for supply and positions, a validator for blocks and transactions.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.cli.seats import BANK_ONLY, Run, checked
from clients.sdk import ApiError, NetworkIndex, open_channel
from clients.sdk.network import BANK, REGULATOR, VALIDATOR
from ledger import genesis as genesis_file
from ledger.errors import StraitsError, expected
from ledger.genesis import Currency, Genesis
from ledger.money import parse_amount, parse_minor
from wire.errors import ConfigError
from wire.tls import TlsFiles

HEALTH_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Target:
    address: str
    tls: TlsFiles


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("which node, as whom")
    group.add_argument(
        "--network",
        type=Path,
        default=os.environ.get("STRAITS_NETWORK"),
        help="network directory from `straits network init` ($STRAITS_NETWORK)",
    )
    group.add_argument(
        "--as",
        dest="participant",
        default=os.environ.get("STRAITS_AS"),
        help="participant whose node and client certificate to use ($STRAITS_AS)",
    )
    group.add_argument("--address", help="node address host:port (instead of --network)")
    group.add_argument("--cert", type=Path, help="client certificate (PEM)")
    group.add_argument("--key", type=Path, help="client private key (PEM)")
    group.add_argument("--ca", type=Path, help="the network CA certificate (PEM)")
    group.add_argument(
        "--genesis", type=Path, help="the network's genesis.json (default: the network's own)"
    )
    parser.add_argument(
        "--minor", action="store_true", help="amounts in integer minor units, in and out"
    )


def network_index(directory: Path) -> dict:  # type: ignore[type-arg]
    path = Path(directory) / "network.json"
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        raise ConfigError(
            f"expected a network directory with network.json, got {str(path)!r}", field="network"
        ) from None


def genesis(args: argparse.Namespace) -> Genesis:
    """The network's genesis: ``--genesis``, else the one of ``--network``."""
    path = getattr(args, "genesis", None)
    if path is None:
        if getattr(args, "network", None) is None:
            raise ConfigError(
                "expected --network DIR or --genesis FILE to know the network's currency "
                "and participants, got neither (or give amounts with --minor)",
                field="genesis",
            )
        path = Path(args.network) / network_index(args.network).get("genesis", "genesis.json")
    return genesis_file.load(path)


def currency(args: argparse.Namespace) -> Currency:
    return genesis(args).currency


def amount(args: argparse.Namespace, text: str) -> int:
    """Minor units of an amount typed on the command line (see the module docstring)."""
    if getattr(args, "minor", False):
        return parse_minor(text)
    return parse_amount(text, currency(args))


def display_currency(args: argparse.Namespace) -> Currency | None:
    """The currency tables show amounts in; None for minor units (``--minor``, or no
    genesis to be found)."""
    if getattr(args, "minor", False):
        return None
    try:
        return currency(args)
    except StraitsError:
        return None


def resolve(args: argparse.Namespace) -> Target:
    if args.address:
        missing = [n for n in ("cert", "key", "ca") if getattr(args, n) is None]
        if missing:
            raise ConfigError(
                expected("--cert, --key and --ca with --address", f"missing {', '.join(missing)}"),
                field=missing[0],
            )
        return Target(args.address, TlsFiles(args.ca, args.cert, args.key))
    if args.network is None or not args.participant:
        raise ConfigError(
            "expected --network DIR --as PARTICIPANT, or --address with "
            "--cert, --key and --ca; got neither",
            field="network",
        )
    if args.participant == REGULATOR:
        return _regulator_target(args)
    bank = getattr(args, "read_bank", None)
    if bank and bank != args.participant:
        raise ApiError(
            grpc.StatusCode.PERMISSION_DENIED, "access_denied", "bank",
            f"{args.participant!r} reads only its own payments; --bank {bank} is for the "
            "regulator",
        )
    base = Path(args.network)
    index = network_index(base)
    node = next((n for n in index["nodes"] if n["id"] == args.participant), None)
    client = next((c for c in index["clients"] if c["participant"] == args.participant), None)
    if node is None or client is None:
        known = sorted(c["participant"] for c in index["clients"])
        raise ConfigError(expected(f"one of {', '.join(known)}", args.participant), field="as")
    return Target(
        node["address"],
        TlsFiles(base / index["ca"], base / client["certificate"], base / client["key"]),
    )


def _regulator_target(args: argparse.Namespace) -> Target:
    network = NetworkIndex.load(args.network)
    kind = getattr(args, "regulator_reads", BANK)
    if kind == BANK:
        bank = getattr(args, "read_bank", None)
        if not bank:
            raise ConfigError(
                expected(f"--bank BANK to read as the regulator ({', '.join(network.banks())})",
                         "no --bank"),
                field="bank",
            )
        node = network.node(bank)
        if node.kind != BANK:
            raise ConfigError(expected(f"a bank ({', '.join(network.banks())})", bank),
                              field="bank")
    elif kind == VALIDATOR:
        # Any validator holds the whole ledger: the first that answers.
        candidates = network.of_kind(VALIDATOR)
        node = next((n for n in candidates if _serving(n.address, network.regulator)),
                    candidates[0])
    else:
        node = network.of_kind(kind)[0]
    return Target(node.address, network.regulator)


def _serving(address: str, tls: TlsFiles) -> bool:
    channel = open_channel(address, tls)
    try:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=HEALTH_TIMEOUT_S)
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False
    finally:
        channel.close()


def channel(args: argparse.Namespace) -> grpc.Channel:
    target = resolve(args)
    return open_channel(target.address, target.tls)


def add_node_command(
    commands: argparse._SubParsersAction,
    name: str,
    help: str,
    run: Run,
    *,
    seats: tuple[str, ...] = BANK_ONLY,
    regulator_reads: str = BANK,
) -> argparse.ArgumentParser:
    """A subcommand that talks to a node: target options, ``--json`` and its ``run``,
    refused up front to a seat not in ``seats``. ``regulator_reads`` is the kind of node
    the regulator reads this from; for a bank's node the command takes ``--bank``."""
    parser = commands.add_parser(name, help=help, description=help)
    add_target_arguments(parser)
    if REGULATOR in seats and regulator_reads == BANK:
        parser.add_argument("--bank", dest="read_bank",
                            help="which bank's node to read (as the regulator)")
    # SUPPRESS keeps `straits --json NAME` working: the subparser sets it only when given.
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print machine-readable JSON instead of a table",
    )
    parser.set_defaults(run=checked(name, seats, _showing_amounts(run)),
                        regulator_reads=regulator_reads)
    return parser


def _showing_amounts(run: Any) -> Any:
    def with_currency(args: argparse.Namespace) -> int:
        if not getattr(args, "json", False):
            args.amounts_in = display_currency(args)
        return int(run(args))

    return with_currency
