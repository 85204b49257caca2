"""ISO 20022 at the command line: ``send-file`` of a pacs.009, ``status-report`` (pacs.002)
and ``statement`` (camt.053, or a table).

A pacs.009 file is checked whole before anything is sent; a fault refuses it with
its line and element path and nothing moves. Its pacs.002 goes to ``--report``.
``status-report`` writes a fresh pacs.002 for a file sent before, each transfer as
it stands now (a queued one may have settled since).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from clients.cli.output import emit
from clients.cli.target import add_node_command, channel, genesis
from clients.sdk import BankClient
from ledger.errors import expected
from wire.errors import InvalidRequestError

if TYPE_CHECKING:
    from clients.iso20022 import IsoBank
    from clients.iso20022.camt053 import Entry

FORMATS = ("table", "camt.053")
ENTRY_COLUMNS = ("transfer_id", "kind", "direction", "counterparty", "amount", "settled",
                 "reference")


def is_xml(path: Path) -> bool:
    """A pacs.009 by its name, or by its first character for a file named otherwise."""
    if path.suffix.lower() == ".xml":
        return True
    with path.open("rb") as file:
        return file.read(64).lstrip().startswith(b"<")


def _iso(args: argparse.Namespace) -> IsoBank:
    # Imported here: the generated message classes take a while to load, and every other
    # command would pay for them at start.
    from clients.iso20022 import IsoBank

    return IsoBank(BankClient(channel(args)), genesis(args))


def _write(target: Path, data: bytes) -> None:
    if str(target) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        target.write_bytes(data)


def send_iso_file(args: argparse.Namespace) -> int:
    iso = _iso(args)
    data = args.file.read_bytes()
    if args.check:
        file = iso.read_pacs009(data)
        emit(args, {"message_id": file.message_id, "transfers": len(file.transfers),
                    "amount": sum(t.amount for t in file.transfers)},
             ("message_id", "transfers", "amount"))
        return 0
    if args.report is not None and str(args.report) != "-" and not args.report.parent.is_dir():
        # Found out before sending: the transfers would go, their report would not.
        raise InvalidRequestError(expected("a report path in an existing directory",
                                           str(args.report)), field="report")
    sent = iso.send_pacs009(data, wait=not args.no_wait)
    if args.report is not None:
        _write(args.report, sent.report)
    if str(args.report) != "-":
        records = []
        for transfer, outcome in zip(sent.file.transfers, sent.outcomes, strict=True):
            records.append({
                "transfer_id": outcome.transfer_id,
                "line": transfer.line,
                "payee": transfer.payee,
                "amount": transfer.amount,
                "status": outcome.status,
                "tx_status": outcome.tx_status,
                "reference": transfer.reference,
                "reason": outcome.reason,
            })
        emit(args, records, ("line", "transfer_id", "payee", "amount", "status", "tx_status",
                             "reference", "reason"))
    return 1 if sent.refused else 0


def _day(text: str) -> dt.date:
    today = dt.datetime.now(dt.UTC).date()
    named = {"today": today, "yesterday": today - dt.timedelta(days=1)}
    if text.lower() in named:
        return named[text.lower()]
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date as YYYY-MM-DD, today or yesterday, got {text!r}") from None


def register(commands: argparse._SubParsersAction) -> None:
    statement = add_node_command(
        commands, "statement", "the account's statement for one day (UTC)", run_statement
    )
    statement.add_argument("--date", type=_day, default="today",
                           help="YYYY-MM-DD, today or yesterday (default today)")
    statement.add_argument("--format", choices=FORMATS, default="table")
    statement.add_argument("--output", type=Path, default=Path("-"),
                           help="camt.053: write here instead of standard output")

    report = add_node_command(
        commands, "status-report",
        "a pacs.002 for a pacs.009 file sent before: each transfer as it stands now",
        run_status_report,
    )
    report.add_argument("file", type=Path)
    report.add_argument("--output", type=Path, default=Path("-"))


def run_statement(args: argparse.Namespace) -> int:
    iso = _iso(args)
    if args.format == "camt.053":
        if getattr(args, "json", False):
            raise InvalidRequestError(expected("--json or --format camt.053", "both"),
                                      field="format")
        _write(args.output, iso.statement(args.date))
        return 0
    opening, entries = iso.entries(args.date)
    record = {
        "account": iso.participant,
        "date": args.date.isoformat(),
        "opening": opening,
        "closing": opening + sum(e.signed for e in entries),
        "entries": [_entry_record(e) for e in entries],
    }
    if getattr(args, "json", False):
        emit(args, record, ())
        return 0
    emit(args, {k: record[k] for k in ("account", "date", "opening", "closing")},
         ("account", "date", "opening", "closing"))
    print()
    emit(args, record["entries"], ENTRY_COLUMNS)
    return 0


def _entry_record(entry: Entry) -> dict[str, object]:
    return {
        "transfer_id": entry.transfer_id,
        "kind": entry.kind,
        "direction": "in" if entry.incoming else "out",
        "counterparty": entry.payer if entry.incoming else entry.payee,
        "amount": entry.amount,
        "settled": dt.datetime.fromtimestamp(entry.settled_time_ms / 1000, dt.UTC)
        .isoformat(timespec="milliseconds"),
        "height": entry.settled_height,
        "reference": entry.reference,
    }


def run_status_report(args: argparse.Namespace) -> int:
    _write(args.output, _iso(args).status_report(args.file.read_bytes()))
    return 0

