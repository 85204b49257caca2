"""Sender limits and the settlement day.

``straits limits`` shows a bank's limits with where it stands against each, and its
figures for today and the last closed day; ``straits limits --set AMOUNT
[--counterparty BANK]`` and ``straits limits --remove [--counterparty BANK]`` change
one (signed by the bank's node) and show the result. For the central bank: ``straits
day close DAY`` closes the day and ``straits gridlock`` shows what waits in queues,
bank by bank.
"""

from __future__ import annotations

import argparse
from typing import Any

from straits.common.v1 import common_pb2 as common_pb

from clients.cli.output import commit_record, emit
from clients.cli.seats import CENTRAL_BANK_ONLY, OVERSIGHT
from clients.cli.target import add_node_command, amount, channel
from clients.sdk import BankClient, CentralBankClient
from clients.sdk.network import CENTRAL_BANK

LIMIT_COLUMNS = ("kind", "counterparty", "limit", "position", "room")
TOTAL_FIELDS = (
    "sent_count",
    "sent_value",
    "received_count",
    "received_value",
    "offset_count",
    "offset_value",
    "cancelled_count",
    "cancelled_value",
)


def register(commands: argparse._SubParsersAction) -> None:
    limits = add_node_command(
        commands, "limits", "show or change this bank's sender limits", run_limits
    )
    change = limits.add_mutually_exclusive_group()
    change.add_argument("--set", metavar="AMOUNT",
                        help="set a limit (in the currency; minor units with --minor)")
    change.add_argument("--remove", action="store_true", help="lift a limit")
    limits.add_argument(
        "--counterparty",
        default="",
        help="the bilateral limit toward this bank (default: the multilateral one)",
    )

    day = commands.add_parser("day", help="the settlement day (central bank)")
    day_actions = day.add_subparsers(dest="action", metavar="ACTION", required=True)
    close = add_node_command(
        day_actions, "close", "close the day, cancelling the queues", run_close,
        seats=CENTRAL_BANK_ONLY,
    )
    close.add_argument("day", type=int, help="the current day's number")

    add_node_command(
        commands, "gridlock", "what waits in queues, bank by bank", run_gridlock,
        seats=OVERSIGHT, regulator_reads=CENTRAL_BANK,
    )


def _totals(totals: common_pb.DayTotals) -> dict[str, int]:
    return {name: getattr(totals, name) for name in TOTAL_FIELDS}


def limits_record(day: common_pb.SettlementDay) -> dict[str, Any]:
    return {
        "day": day.day,
        "queued_count": day.queued_count,
        "limits": [
            {
                "kind": "bilateral" if limit.counterparty else "multilateral",
                "counterparty": limit.counterparty or "(all others)",
                "limit": limit.amount,
                "position": limit.position,
                "room": limit.amount - limit.position,
            }
            for limit in day.limits
        ],
        "today": _totals(day.totals),
        "last_day": day.last_day,
        "last_day_totals": _totals(day.last_day_totals),
    }


def _print(args: argparse.Namespace, day: common_pb.SettlementDay) -> None:
    record = limits_record(day)
    if getattr(args, "json", False):
        emit(args, record, ())
        return
    print(f"settlement day {record['day']}, {record['queued_count']} queued")
    if record["limits"]:
        emit(args, record["limits"], LIMIT_COLUMNS)
    else:
        print("no limits")
    rows = [{"day": f"today ({record['day']})", **record["today"]}]
    if record["last_day"]:
        rows.append({"day": f"closed ({record['last_day']})", **record["last_day_totals"]})
    emit(args, rows, ("day", *TOTAL_FIELDS))


def run_limits(args: argparse.Namespace) -> int:
    bank = BankClient(channel(args))
    if args.set is not None:
        day = bank.set_limit(amount(args, args.set), counterparty=args.counterparty).account.day
    elif args.remove:
        day = bank.set_limit(counterparty=args.counterparty, remove=True).account.day
    else:
        day = bank.limits()
    _print(args, day)
    return 0


def run_close(args: argparse.Namespace) -> int:
    commit = CentralBankClient(channel(args)).close_day(args.day)
    emit(args, commit_record(commit), ("transaction_id", "height", "outcome", "reason"))
    return 0


def run_gridlock(args: argparse.Namespace) -> int:
    central_bank = CentralBankClient(channel(args))
    view = central_bank.gridlock()
    gridlock, count, value = view.gridlock, view.queued_count, view.queued_value
    banks = [
        {
            "bank": a.id,
            "queued_count": a.day.queued_count,
            "queued_value": a.queued_out,
            "offset_today": a.day.totals.offset_value,
        }
        for a in central_bank.positions()
        if a.role == common_pb.PARTICIPANT_ROLE_BANK
    ]
    if getattr(args, "json", False):
        emit(
            args,
            {"gridlock": gridlock, "queued_count": count, "queued_value": value, "banks": banks},
            (),
        )
        return 0
    print(f"gridlock: {'yes' if gridlock else 'no'}; {count} queued, value {value}")
    emit(args, banks, ("bank", "queued_count", "queued_value", "offset_today"))
    return 0
