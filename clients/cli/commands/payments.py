"""A bank's commands against its own node: send, send-file, balance, queue, history,
watch, cancel, hold, release, reprioritise, redeem.

Amounts are written in the network's currency (``1,000.00``, ``SGD 1000``), or in
integer minor units with ``--minor``. Money-moving commands wait for the block by
default (``--no-wait`` answers at acceptance). ``send-file`` takes a CSV file or an
ISO 20022 pacs.009 file (``clients.cli.commands.iso``); for a CSV file it derives
each line's request id from the file's content and the line number, so sending the
same file again never pays twice.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from straits.bank.v1 import bank_pb2 as pb
from straits.ledger.v1 import transaction_pb2 as tx_pb

from clients.cli.commands.iso import is_xml, send_iso_file
from clients.cli.output import (
    PAYMENT_COLUMNS,
    account_record,
    cell,
    commit_record,
    emit,
    payment_record,
)
from clients.cli.seats import BANKS
from clients.cli.target import add_node_command, amount, channel
from clients.sdk import BankClient
from clients.sdk.bank import Instruction
from ledger.errors import StraitsError, expected
from wire.errors import InvalidRequestError

AMOUNT_HELP = "in the network's currency (1,000.00 or SGD 1000), or minor units with --minor"
PRIORITIES = {"urgent": tx_pb.PRIORITY_URGENT, "normal": tx_pb.PRIORITY_NORMAL}
DIRECTIONS = {"out": pb.DIRECTION_OUTGOING, "in": pb.DIRECTION_INCOMING}
STATUSES = {
    pb.PaymentStatus.Name(v).removeprefix("PAYMENT_STATUS_").lower(): v
    for v in pb.PaymentStatus.values()
    if v
}
# Besides transfers, the central bank's issuances to the bank and its redemptions.
KINDS = {
    pb.PaymentKind.Name(v).removeprefix("PAYMENT_KIND_").lower(): v
    for v in pb.PaymentKind.values()
    if v
}
FILE_BATCH = 1000
COMMIT_COLUMNS = ("transaction_id", "height", "outcome", "reason")


def count(text: str) -> int:
    """A whole number of zero or more, for heights, limits and counts."""
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of 0 or more, got {text!r}")
    return int(text)


def _bank(args: argparse.Namespace) -> BankClient:
    return BankClient(channel(args))


def _transfer_id(text: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != 32:
        raise InvalidRequestError(
            expected("a transfer id of 64 hex digits", text), field="transfer_id"
        )
    return value


def register(commands: argparse._SubParsersAction) -> None:
    send = add_node_command(commands, "send", "pay another bank", run_send)
    send.add_argument("payee")
    send.add_argument("amount", help=AMOUNT_HELP)
    send.add_argument("--priority", choices=PRIORITIES, default="normal")
    send.add_argument("--reference", default="")
    send.add_argument("--queue-always", action="store_true", help="queue even when funds suffice")
    send.add_argument("--request-id", default="", help="idempotency key (default: random)")
    send.add_argument("--no-wait", action="store_true", help="answer once accepted")

    send_file = add_node_command(
        commands,
        "send-file",
        "send every payment of a file: ISO 20022 pacs.009 (.xml), or CSV "
        "(payee,amount,priority,reference)",
        run_send_file,
    )
    send_file.add_argument("file", type=Path)
    send_file.add_argument("--no-wait", action="store_true", help="answer once accepted")
    send_file.add_argument(
        "--report", type=Path, help="pacs.009 only: write the pacs.002 status report here "
        "('-' for standard output, instead of the table)")
    send_file.add_argument(
        "--check", action="store_true", help="check the whole file and send nothing")

    add_node_command(commands, "balance", "balance, queued in and out, position", run_balance,
                     seats=BANKS)
    add_node_command(commands, "queue", "payments waiting in queues, out and in", run_queue,
                     seats=BANKS)

    history = add_node_command(commands, "history", "payments, newest first", run_history,
                               seats=BANKS)
    history.add_argument("--direction", choices=DIRECTIONS)
    history.add_argument("--counterparty", default="")
    history.add_argument("--status", action="append", choices=STATUSES, default=[])
    history.add_argument("--from-height", type=count, default=0)
    history.add_argument("--to-height", type=count, default=0)
    history.add_argument("--limit", type=count, default=50)
    history.add_argument("--kind", action="append", choices=KINDS, default=[],
                         help="transfer (the default), issuance, redemption; may repeat")

    watch = add_node_command(
        commands, "watch", "print settlement events as blocks commit", run_watch, seats=BANKS
    )
    watch.add_argument("--from-height", type=count, default=0, help="replay from this height")
    watch.add_argument("--direction", choices=DIRECTIONS)
    watch.add_argument("--count", type=count, default=0, help="stop after this many events")

    for name in ("cancel", "hold", "release"):
        operation = add_node_command(
            commands, name, f"{name} a queued outgoing payment", run_operation
        )
        operation.add_argument("transfer_id")
    reprioritise = add_node_command(
        commands, "reprioritise", "change a queued payment's priority", run_operation
    )
    reprioritise.add_argument("transfer_id")
    reprioritise.add_argument("priority", choices=PRIORITIES)

    redeem = add_node_command(
        commands, "redeem", "give tokens back to the central bank", run_redeem
    )
    redeem.add_argument("amount", help=AMOUNT_HELP)
    redeem.add_argument("collateral_ref", help="the pledge to release")
    redeem.add_argument("--request-id", default="")


def run_send(args: argparse.Namespace) -> int:
    payment = _bank(args).send(
        args.payee,
        amount(args, args.amount),
        priority=PRIORITIES[args.priority],
        reference=args.reference,
        queue_always=args.queue_always,
        request_id=args.request_id,
        wait=not args.no_wait,
    )
    emit(args, payment_record(payment), PAYMENT_COLUMNS)
    return 0


def read_instructions(args: argparse.Namespace, path: Path) -> Iterator[Instruction]:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:24]
    try:
        rows = list(csv.reader(io.StringIO(data.decode())))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InvalidRequestError(expected("a UTF-8 CSV file", str(exc)), field=path.name) from None
    for line, row in enumerate(rows, start=1):
        if not row or row[0].strip().lower() in ("", "payee"):
            continue
        fields = [f.strip() for f in row] + ["", ""]
        payee, written, priority, reference = fields[:4]
        if priority.lower() not in ("", *PRIORITIES):
            raise InvalidRequestError(
                expected("payee,amount,priority,reference with urgent, normal or nothing as "
                         "priority", ",".join(row)),
                field=f"{path.name}:{line}",
            )
        try:
            minor = amount(args, written)
        except StraitsError as exc:
            raise InvalidRequestError(exc.detail, field=f"{path.name}:{line}") from None
        yield Instruction(
            payee,
            minor,
            PRIORITIES[priority.lower() or "normal"],
            reference,
            request_id=f"file-{digest}-{line}",
        )


def run_send_file(args: argparse.Namespace) -> int:
    if is_xml(args.file):
        return send_iso_file(args)
    if args.report is not None:
        raise InvalidRequestError(expected("a pacs.009 file with --report", "a CSV file"),
                                  field="report")
    instructions = list(read_instructions(args, args.file))
    if args.check:
        emit(args, {"transfers": len(instructions),
                    "amount": sum(i.amount for i in instructions)}, ("transfers", "amount"))
        return 0
    bank = _bank(args)
    records = []
    failed = 0
    it = iter(instructions)
    while chunk := list(islice(it, FILE_BATCH)):
        for instruction, result in zip(
            chunk, bank.send_many(chunk, wait=not args.no_wait), strict=True
        ):
            if result.WhichOneof("result") == "payment":
                records.append(payment_record(result.payment))
                continue
            failed += 1
            records.append(
                {
                    "payee": instruction.payee,
                    "amount": instruction.amount,
                    "request_id": instruction.request_id,
                    "status": "refused",
                    "reason": result.error.reason,
                    "reference": result.error.detail,
                }
            )
    emit(args, records, (*PAYMENT_COLUMNS, "reason"))
    return 1 if failed else 0


def run_balance(args: argparse.Namespace) -> int:
    emit(
        args,
        account_record(_bank(args).balance()),
        ("id", "balance", "queued_in", "queued_out", "position", "suspended"),
    )
    return 0


def run_queue(args: argparse.Namespace) -> int:
    queue = _bank(args).queue()
    records = [payment_record(p) for p in [*queue.outgoing, *queue.incoming]]
    emit(args, records, (*PAYMENT_COLUMNS[:6], "held", "reference"))
    return 0


def run_history(args: argparse.Namespace) -> int:
    payments = _bank(args).history(
        direction=DIRECTIONS.get(args.direction, pb.DIRECTION_UNSPECIFIED),
        counterparty=args.counterparty,
        statuses=[STATUSES[s] for s in args.status],
        from_height=args.from_height,
        to_height=args.to_height,
        page_size=min(args.limit, 1000),
        kinds=[KINDS[k] for k in args.kind],
    )
    # `reason` says how a payment left its queue: settled_by_offsetting, day_closed.
    records = [payment_record(p) for p in islice(payments, args.limit)]
    columns = (*PAYMENT_COLUMNS, "reason")
    emit(args, records, ("kind", *columns) if set(args.kind) - {"transfer"} else columns)
    return 0


def run_watch(args: argparse.Namespace) -> int:
    events = _bank(args).watch(
        from_height=args.from_height,
        direction=DIRECTIONS.get(args.direction, pb.DIRECTION_UNSPECIFIED),
    )
    for seen, event in enumerate(events, start=1):
        record = payment_record(event.payment)
        if getattr(args, "json", False):
            emit(args, record, PAYMENT_COLUMNS)  # one JSON document per event
        else:
            currency = getattr(args, "amounts_in", None)
            print("  ".join(cell(c, record[c], currency, whole=True)
                            for c in (*PAYMENT_COLUMNS, "reason")), flush=True)
        if args.count and seen >= args.count:
            break
    return 0


def run_operation(args: argparse.Namespace) -> int:
    bank = _bank(args)
    transfer_id = _transfer_id(args.transfer_id)
    if args.command == "reprioritise":
        answer = bank.reprioritise(transfer_id, PRIORITIES[args.priority])
    else:
        answer = getattr(bank, args.command)(transfer_id)
    record = {**payment_record(answer.payment), "operation": commit_record(answer.commit)}
    emit(args, record, (*PAYMENT_COLUMNS[:-1], "held"))
    return 0


def run_redeem(args: argparse.Namespace) -> int:
    commit = _bank(args).redeem(
        amount(args, args.amount), args.collateral_ref, request_id=args.request_id
    )
    emit(args, commit_record(commit), COMMIT_COLUMNS)
    return 0
