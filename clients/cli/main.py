"""The ``straits`` command: one argparse subcommand per module in ``clients.cli.commands``.

The node commands (``straits validator|bank|central-bank``) are the servers' own entry points
(``services.run``); the CLI only dispatches to them.

Each command module exposes ``register(subparsers)``, which adds its parser and sets
``run`` to a function taking the parsed arguments and returning the exit status.

Whatever goes wrong ends the command with one line on stderr that says why, and a
non-zero status, never a traceback: 2 for a command line that does not parse, 1 for a
refusal (a Straits error, a node's answer, a file that cannot be read), 70 for a
fault of the tool itself, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from clients.cli.commands import (
    audit,
    chain,
    day,
    governance,
    health,
    iso,
    load,
    network,
    payments,
    validators,
)
from clients.sdk import ApiError
from ledger.errors import StraitsError
from services import run as nodes
from services.network.ceremony import commands as ceremony

COMMANDS = (network, ceremony, nodes, health, payments, iso, day, governance, validators,
            chain, audit, load)
USAGE_ERROR, INTERNAL_ERROR, INTERRUPTED = 2, 70, 130


class Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line (subcommand parsers share the class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="straits", description="Tokenised interbank settlement on a QBFT ledger.")
    parser.add_argument("--json", action="store_true",
                        help="print machine-readable JSON instead of tables")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else USAGE_ERROR
    try:
        return int(args.run(args))
    except StraitsError as error:
        print(f"straits: {_one_line(error)}", file=sys.stderr)
        return 1
    except ApiError as error:
        # A node refused the call: its status, stable reason and message say why.
        message = _one_line(error.message)
        if error.code.name == "UNIMPLEMENTED":
            message = (f"the node of {getattr(args, 'participant', None) or 'this address'} "
                       f"does not serve '{args.command}'; use --as with a participant whose "
                       "node does (the central bank's for issue, admit, supply...)")
        print(f"straits: {error.code.name}: {message}", file=sys.stderr)
        return 1
    except OSError as error:
        where = f" {error.filename}" if getattr(error, "filename", None) else ""
        print(f"straits: cannot use{where}: {_one_line(error.strerror or error)}",
              file=sys.stderr)
        return 1
    except UnicodeDecodeError as error:
        print(f"straits: expected UTF-8 text: {_one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("straits: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as error:  # the promise is one line, whatever broke
        print(f"straits: internal error: {type(error).__name__}: {_one_line(error)}",
              file=sys.stderr)
        return INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
