"""``straits blocks`` and ``straits transaction``: the chain as a validator serves it.

Read from the first validator that answers, as the regulator by default; ``--as`` may
name any node of the network directory, whose own certificate the validator then
scopes (a bank sees its own transactions, every id, header and seal).
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from google.protobuf.json_format import MessageToDict
from straits.ledger.v1 import block_pb2 as block_pb
from straits.ledger.v1 import receipt_pb2 as receipt_pb
from straits.validator.v1 import validator_pb2 as validator_pb

from clients.cli.commands.payments import _transfer_id
from clients.cli.output import commit_record, emit
from clients.cli.seats import EVERYONE
from clients.cli.target import add_node_command
from clients.sdk import ApiError, NetworkIndex, RegulatorClient, open_channel
from ledger import codec
from ledger.errors import expected
from ledger.transaction import Transaction
from wire.errors import ConfigError, UnavailableError

BLOCK_COLUMNS = ("height", "block_hash", "time", "proposer", "round", "transactions", "seals")
TRANSACTION_COLUMNS = ("transaction_id", "status", "kind", "signer", "height", "outcome",
                       "queue_outcome")


def register(commands: argparse._SubParsersAction) -> None:
    blocks = add_node_command(
        commands, "blocks", "committed blocks: header, transactions and seals", run_blocks,
        seats=EVERYONE,
    )
    blocks.add_argument("--from-height", type=int, default=0,
                        help="first height (default: the last --limit blocks)")
    blocks.add_argument("--limit", type=int, default=20)
    transaction = add_node_command(
        commands, "transaction", "one transaction: its body, block and outcome",
        run_transaction, seats=EVERYONE,
    )
    transaction.add_argument("transaction_id")


def _reader(args: argparse.Namespace) -> tuple[RegulatorClient, str]:
    """A validator that answers, read with the seat's certificate, and the chain id."""
    if args.network is None:
        raise ConfigError("expected --network DIR ($STRAITS_NETWORK)", field="network")
    network = NetworkIndex.load(args.network)
    tls = network.reader_tls(args.participant or "")
    for node in network.of_kind("validator"):
        client = RegulatorClient(open_channel(node.address, tls))
        try:
            return client, client.head().chain_id
        except ApiError:
            continue
    raise UnavailableError(expected("a validator that answers", "none"))


def block_record(view: validator_pb.BlockView) -> dict[str, Any]:
    header = codec.decode(block_pb.BlockHeader, view.block.header)
    when = dt.datetime.fromtimestamp(header.timestamp_ms / 1000, dt.UTC)
    return {
        "height": header.height,
        "block_hash": codec.block_hash(header.chain_id, view.block.header).hex(),
        "time": when.isoformat(timespec="milliseconds"),
        "proposer": header.proposer,
        "round": header.round,
        "transactions": len(view.transaction_ids),
        "seals": len(view.block.seals),
        "transaction_ids": [t.hex() for t in view.transaction_ids],
        "redacted": view.redacted,
    }


def run_blocks(args: argparse.Namespace) -> int:
    reader, _ = _reader(args)
    start = args.from_height or max(1, reader.head().height - args.limit + 1)
    emit(args, [block_record(v) for v in reader.blocks(start, args.limit)], BLOCK_COLUMNS)
    return 0


def run_transaction(args: argparse.Namespace) -> int:
    reader, chain_id = _reader(args)
    answer = reader.transaction(_transfer_id(args.transaction_id))
    transaction = Transaction.from_proto(chain_id, answer.transaction)
    status = validator_pb.TransactionStatus.Name(answer.status)
    record: dict[str, Any] = {
        "transaction_id": transaction.id.hex(),
        "status": status.removeprefix("TRANSACTION_STATUS_").lower(),
        "kind": transaction.kind,
        "signer": transaction.signer,
        "body": _body(transaction),
        "height": answer.commit.height or None,
        "outcome": None,
        "queue_outcome": None,
    }
    if answer.HasField("commit"):
        record["outcome"] = commit_record(answer.commit)["outcome"]
        record["reason"] = answer.commit.receipt.reason
    if answer.queue_outcome:
        name = receipt_pb.Outcome.Name(answer.queue_outcome)
        record["queue_outcome"] = name.removeprefix("OUTCOME_").lower()
        record["queue_outcome_height"] = answer.queue_outcome_height
    emit(args, record, TRANSACTION_COLUMNS)
    return 0


def _body(transaction: Transaction) -> dict[str, Any]:
    return MessageToDict(getattr(transaction.body, transaction.kind)) if transaction.kind else {}
