"""The central bank's commands against its node: issue, admit, suspend, unsuspend,
supply and positions. Each writing command waits for the block and prints the commit.
"""

from __future__ import annotations

import argparse

from clients.cli.commands.payments import AMOUNT_HELP
from clients.cli.output import account_record, commit_record, emit
from clients.cli.seats import CENTRAL_BANK_ONLY, OVERSIGHT, seat_of
from clients.cli.target import add_node_command, amount, channel
from clients.sdk import CentralBankClient, RegulatorClient
from clients.sdk.network import CENTRAL_BANK, REGULATOR, VALIDATOR
from ledger.keys import PublicKey

COMMIT_COLUMNS = ("transaction_id", "height", "outcome", "reason")
ACCOUNT_COLUMNS = ("id", "role", "balance", "queued_in", "queued_out", "position", "suspended")


def _central_bank(args: argparse.Namespace) -> CentralBankClient:
    return CentralBankClient(channel(args))


def register(commands: argparse._SubParsersAction) -> None:
    issue = add_node_command(
        commands, "issue", "credit a bank against pledged collateral", run_issue,
        seats=CENTRAL_BANK_ONLY,
    )
    issue.add_argument("bank")
    issue.add_argument("amount", help=AMOUNT_HELP)
    issue.add_argument("collateral_ref", help="the pledge's reference")
    issue.add_argument("--request-id", default="", help="idempotency key (default: random)")

    admit = add_node_command(commands, "admit", "admit a new bank", run_admit,
                             seats=CENTRAL_BANK_ONLY)
    admit.add_argument("bank")
    admit.add_argument("key", help="the bank's ledger public key, <type>:<base64>")
    admit.add_argument("--name", default="")

    for name, help_text in (("suspend", "suspend a bank"), ("unsuspend", "lift a suspension")):
        parser = add_node_command(commands, name, help_text, run_suspension,
                                  seats=CENTRAL_BANK_ONLY)
        parser.add_argument("bank")

    add_node_command(commands, "supply", "issued, redeemed and total supply", run_supply,
                     seats=OVERSIGHT, regulator_reads=CENTRAL_BANK)
    # The regulator reads positions from a validator: the ledger itself, not a copy.
    add_node_command(
        commands, "positions", "every participant's balance and position", run_positions,
        seats=OVERSIGHT, regulator_reads=VALIDATOR,
    )


def run_issue(args: argparse.Namespace) -> int:
    commit = _central_bank(args).issue(
        args.bank, amount(args, args.amount), args.collateral_ref, request_id=args.request_id
    )
    emit(args, commit_record(commit), COMMIT_COLUMNS)
    return 0


def run_admit(args: argparse.Namespace) -> int:
    key = PublicKey.from_text(args.key).to_proto()
    commit = _central_bank(args).admit_bank(args.bank, key, args.name or args.bank)
    emit(args, commit_record(commit), COMMIT_COLUMNS)
    return 0


def run_suspension(args: argparse.Namespace) -> int:
    central_bank = _central_bank(args)
    act = central_bank.suspend_bank if args.command == "suspend" else central_bank.unsuspend_bank
    emit(args, commit_record(act(args.bank)), COMMIT_COLUMNS)
    return 0


def run_supply(args: argparse.Namespace) -> int:
    supply = _central_bank(args).total_supply()
    emit(
        args,
        {
            "issued": supply.issued,
            "redeemed": supply.redeemed,
            "total_supply": supply.total_supply,
            "height": supply.height,
        },
        ("issued", "redeemed", "total_supply", "height"),
    )
    return 0


def run_positions(args: argparse.Namespace) -> int:
    if seat_of(args) == REGULATOR:
        accounts = list(RegulatorClient(channel(args)).accounts())
    else:
        accounts = list(_central_bank(args).positions())
    emit(args, [account_record(a) for a in accounts], ACCOUNT_COLUMNS)
    return 0
