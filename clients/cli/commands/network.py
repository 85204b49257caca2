"""``straits network``: create a local network's keys, certificates, genesis and configs."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from clients.cli.commands.up import register_up
from ledger.keys import KeyType
from services.network.setup import NetworkPlan, init_network


def register(commands: argparse._SubParsersAction) -> None:
    network = commands.add_parser("network", help="create and run a local network")
    actions = network.add_subparsers(dest="action", required=True, metavar="ACTION")

    init = actions.add_parser(
        "init", help="generate keys, a CA, certificates, genesis and per-node configs"
    )
    defaults = NetworkPlan()
    init.add_argument("--dir", type=Path, required=True, help="directory to write into")
    init.add_argument("--validators", type=int, default=defaults.validators)
    init.add_argument("--banks", type=int, default=defaults.banks)
    init.add_argument("--chain-id", default=defaults.chain_id)
    init.add_argument(
        "--base-port",
        type=int,
        default=defaults.base_port,
        help="first node's port; the others count up from it",
    )
    init.add_argument("--host", default=defaults.host, help="address the nodes listen on")
    init.add_argument("--currency", default=defaults.currency)
    init.add_argument("--decimals", type=int, default=defaults.decimals)
    init.add_argument(
        "--bank-key-type",
        choices=[t.value for t in KeyType],
        default=defaults.bank_key_type.value,
        help="the banks' ledger signing keys (validators and the central bank use ed25519)",
    )
    init.set_defaults(run=run_init)
    register_up(actions)


def run_init(args: argparse.Namespace) -> int:
    plan = NetworkPlan(
        chain_id=args.chain_id,
        validators=args.validators,
        banks=args.banks,
        base_port=args.base_port,
        host=args.host,
        currency=args.currency,
        decimals=args.decimals,
        bank_key_type=KeyType(args.bank_key_type),
    )
    layout = init_network(args.dir, plan, now=dt.datetime.now(dt.UTC))
    if args.json:
        print((layout.directory / "network.json").read_text(), end="")
        return 0
    print(f"Network {plan.chain_id!r} written to {layout.directory}")
    width = max(len(n.id) for n in layout.nodes)
    for node in layout.nodes:
        print(
            f"  {node.id:<{width}}  {node.kind.value:<12}  {node.address}  "
            f"{node.config.relative_to(layout.directory)}"
        )
    print(
        f"Client certificates: {layout.directory / 'clients'}; "
        f"regulator: {layout.directory / 'regulator'}"
    )
    return 0
