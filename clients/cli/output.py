"""What commands print: aligned tables for people, one JSON document for scripts.

Every record is first a plain dict (ids as hex, enums as short lower-case names,
amounts as integer minor units); ``emit`` prints it either way. Tables show amounts
in the network's currency (``1,000.00``) when ``args.amounts_in`` is set; JSON keeps
minor units, so scripts never parse a formatted number.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any

from straits.bank.v1 import bank_pb2 as bank_pb
from straits.common.v1 import common_pb2 as common_pb
from straits.ledger.v1 import receipt_pb2 as receipt_pb
from straits.ledger.v1 import transaction_pb2 as tx_pb

from ledger.genesis import Currency
from ledger.money import format_amount

Record = Mapping[str, Any]
AMOUNT_COLUMNS = frozenset(
    {"amount", "balance", "queued_in", "queued_out", "position", "issued", "redeemed",
     "total_supply", "opening", "closing"}
)


def _name(enum: Any, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix).lower()


def priority_name(value: int) -> str:
    return _name(tx_pb.Priority, value, "PRIORITY_")


def payment_record(payment: bank_pb.Payment) -> dict[str, Any]:
    return {
        "transfer_id": payment.transfer_id.hex(),
        "request_id": payment.request_id,
        "direction": _name(bank_pb.Direction, payment.direction, "DIRECTION_"),
        "payer": payment.payer,
        "payee": payment.payee,
        "amount": payment.amount,
        "priority": priority_name(payment.priority),
        "status": _name(bank_pb.PaymentStatus, payment.status, "PAYMENT_STATUS_"),
        "held": payment.held,
        "height": payment.settled_height or payment.committed_height,
        "reference": payment.reference,
        "reason": payment.reason,
        "kind": _name(bank_pb.PaymentKind, payment.kind, "PAYMENT_KIND_"),
    }


def commit_record(commit: common_pb.Commit) -> dict[str, Any]:
    return {
        "transaction_id": commit.transaction_id.hex(),
        "height": commit.height,
        "outcome": _name(receipt_pb.Outcome, commit.receipt.outcome, "OUTCOME_"),
        "reason": commit.receipt.reason,
        "detail": commit.receipt.detail,
    }


def account_record(account: common_pb.Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "role": _name(common_pb.ParticipantRole, account.role, "PARTICIPANT_ROLE_"),
        "balance": account.balance,
        "queued_in": account.queued_in,
        "queued_out": account.queued_out,
        "position": account.position,
        "suspended": account.suspended,
    }


PAYMENT_COLUMNS = (
    "transfer_id",
    "direction",
    "payer",
    "payee",
    "amount",
    "priority",
    "status",
    "height",
    "reference",
)


def cell(column: str, value: Any, currency: Currency | None = None, *,
         whole: bool = False) -> str:
    """One value as a table shows it: amounts in ``currency`` when given."""
    if currency is not None and column in AMOUNT_COLUMNS and isinstance(value, int):
        return format_amount(value, currency)
    text = "" if value is None else str(value)
    # Ids are 64 hex digits: the first 16 tell them apart on screen; --json has them whole.
    return text[:16] if column.endswith("_id") and not whole else text


def table(rows: Sequence[Record], columns: Sequence[str],
          currency: Currency | None = None) -> str:
    if not rows:
        return "(none)"
    cells = [[cell(c, row.get(c), currency) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def emit(args: argparse.Namespace, data: Record | Sequence[Record], columns: Sequence[str]) -> None:
    """Prints one record or a list of them, as a table or (``--json``) as JSON."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2))
        return
    rows = [data] if isinstance(data, Mapping) else list(data)
    print(table(rows, columns, getattr(args, "amounts_in", None)))
