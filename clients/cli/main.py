"""The ``straits`` command: one argparse subcommand per module in ``clients.cli.commands``.

The node commands (``straits validator|bank|issuer``) are the servers' own entry points
(``services.run``); the CLI only dispatches to them.

Each command module exposes ``register(subparsers)``, which adds its parser and sets
``run`` to a function taking the parsed arguments and returning the exit status.
Errors of the Straits hierarchy end the command with their message and status 1;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from clients.cli.commands import audit, governance, load, network, payments, validators
from clients.sdk import ApiError
from ledger.errors import StraitsError
from services import run as nodes

COMMANDS = (network, nodes, payments, governance, validators, load, audit)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="straits", description="Tokenised interbank settlement on a QBFT ledger.")
    parser.add_argument("--json", action="store_true",
                        help="print machine-readable JSON instead of tables")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except StraitsError as error:
        print(f"straits: {error}", file=sys.stderr)
        return 1
    except ApiError as error:
        # A node refused the call: its status, stable reason and message say why.
        print(f"straits: {error.code.name}: {error.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
