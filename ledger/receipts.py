"""The receipts root: what every transaction of a block did, sealed in its header.

The header's ``transactions_root`` fixes which transactions a block carries and its
``state_root`` the state after them, but a participant that follows the chain without
replaying it (a bank node) learns what became of its payments from the receipts a
validator serves. ``receipts_root`` seals those too, so one validator cannot tell a
bank that a settled payment was rejected, or that money arrived that never did.

Leaves, in this order: one per transaction of the block, in block order (its id,
outcome, reason, detail and the amount it moved or queued), then one per queue
settlement, in the order the block recorded them (transfer id, outcome, whether it
settled by offsetting, and the reason, such as a cancel at the day's close; the id fixes
the amount). Each leaf is the SHA-256 of a tagged, length-prefixed encoding, and the
root is ``codec.merkle_root`` over the leaves.

A redacted view (a bank sees only its own transactions) lists every leaf hash, as it
lists every transaction id: ``check_view`` recomputes the leaves of what it was shown,
finds each at its place, and checks the root over all of them against the header.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

from straits.ledger.v1 import receipt_pb2 as receipt_pb

from ledger import codec, statehash
from ledger.errors import InvalidBlockError, expected
from ledger.transaction import Transaction


def amount_of(transaction: Transaction) -> int:
    """The amount a transaction moves or queues; 0 for one that moves no money."""
    kind = transaction.kind
    if kind == "transfer":
        return int(transaction.body.transfer.amount)
    return int(getattr(getattr(transaction.body, kind), "amount", 0)) if kind else 0


_RECEIPT_TAG = statehash.encode(b"receipt")
_U16 = struct.Struct(">H")
_Q = struct.Struct(">q")
_NO_TEXT = _U16.pack(0) * 2


# A receipt with no reason and no detail (every settled or queued payment): the outcome,
# the two empty texts and the amount in one pack.
_PLAIN_TAIL = struct.Struct(">qHHq")
_ID_HEAD = _RECEIPT_TAG + _U16.pack(codec.HASH_SIZE)


def receipt_leaf(transaction: Transaction, receipt: receipt_pb.Receipt) -> bytes:
    """SHA-256 of ``statehash.encode(b"receipt", id, outcome, reason, detail, amount)``,
    built directly: this runs once per transaction."""
    transaction_id = transaction.id
    reason, detail = receipt.reason, receipt.detail
    if not (reason or detail) and len(transaction_id) == codec.HASH_SIZE:
        return hashlib.sha256(
            _ID_HEAD
            + transaction_id
            + _PLAIN_TAIL.pack(receipt.outcome, 0, 0, amount_of(transaction))
        ).digest()
    if reason or detail:
        reason_bytes, detail_bytes = reason.encode(), detail.encode()
        text = b"".join(
            (_U16.pack(len(reason_bytes)), reason_bytes, _U16.pack(len(detail_bytes)), detail_bytes)
        )
    else:
        text = _NO_TEXT
    return hashlib.sha256(
        b"".join(
            (
                _RECEIPT_TAG,
                _U16.pack(len(transaction_id)),
                transaction_id,
                _Q.pack(receipt.outcome),
                text,
                _Q.pack(amount_of(transaction)),
            )
        )
    ).digest()


def settlement_leaf(settlement: receipt_pb.QueueSettlement) -> bytes:
    return hashlib.sha256(
        statehash.encode(b"queue-settlement", settlement.transfer_id, settlement.outcome,
                         int(settlement.by_offsetting), settlement.reason)
    ).digest()


def leaves(
    transactions: Sequence[Transaction],
    receipts: Sequence[receipt_pb.Receipt],
    settlements: Sequence[receipt_pb.QueueSettlement],
) -> list[bytes]:
    if len(receipts) != len(transactions):
        raise InvalidBlockError(
            expected(f"{len(transactions)} receipts, one per transaction", len(receipts)),
            field="receipts",
        )
    found = []
    for transaction, receipt in zip(transactions, receipts, strict=True):
        if receipt.transaction_id != transaction.id:
            raise InvalidBlockError(
                expected(
                    f"the receipt of {transaction.id.hex()[:16]}", receipt.transaction_id.hex()
                ),
                field="receipts",
            )
        found.append(receipt_leaf(transaction, receipt))
    found.extend(settlement_leaf(s) for s in settlements)
    return found


def receipts_root(
    transactions: Sequence[Transaction],
    receipts: Sequence[receipt_pb.Receipt],
    settlements: Sequence[receipt_pb.QueueSettlement],
) -> bytes:
    return codec.merkle_root(leaves(transactions, receipts, settlements))


def check_whole(
    root: bytes,
    ids: Sequence[bytes],
    transactions: Sequence[Transaction],
    receipts: Sequence[receipt_pb.Receipt],
    settlements: Sequence[receipt_pb.QueueSettlement],
) -> None:
    """A whole block's receipts: one per listed transaction, in order, matching ``root``."""
    if [t.id for t in transactions] != list(ids):
        raise InvalidBlockError(
            expected(f"all {len(ids)} listed transactions", len(transactions)),
            field="block.transactions",
        )
    if receipts_root(transactions, receipts, settlements) != root:
        raise InvalidBlockError(
            "receipts_root does not match the receipts and queue settlements served",
            field="receipts",
        )


def check_redacted(
    root: bytes,
    ids: Sequence[bytes],
    listed: Sequence[bytes],
    transactions: Sequence[Transaction],
    receipts: Sequence[receipt_pb.Receipt],
    settlements: Sequence[receipt_pb.QueueSettlement],
) -> None:
    """Part of a block's receipts against ``root`` and the ``listed`` leaf hashes.

    Each shown transaction needs its receipt, whose leaf must sit at the transaction's
    place; each shown settlement's leaf must be among the settlement leaves (those
    after one per transaction); and the listed leaves must make up ``root``.
    """
    if len(listed) < len(ids):
        raise InvalidBlockError(
            expected(f"at least {len(ids)} receipt hashes", len(listed)), field="receipt_hashes"
        )
    if codec.merkle_root(list(listed)) != root:
        raise InvalidBlockError(
            "receipts_root does not match the listed receipt hashes", field="receipt_hashes"
        )
    place = {transaction_id: index for index, transaction_id in enumerate(ids)}
    by_id = {bytes(r.transaction_id): r for r in receipts}
    if len(by_id) != len(receipts) or len(receipts) != len(transactions):
        raise InvalidBlockError(
            expected(f"one receipt for each of {len(transactions)} transactions", len(receipts)),
            field="receipts",
        )
    for transaction in transactions:
        receipt = by_id.get(transaction.id)
        if receipt is None:
            raise InvalidBlockError(
                expected("a receipt for each transaction shown", transaction.id.hex()[:16]),
                field="receipts",
            )
        if receipt_leaf(transaction, receipt) != listed[place[transaction.id]]:
            raise InvalidBlockError(
                f"the receipt of {transaction.id.hex()[:16]} is not the one sealed in the block",
                field="receipts",
            )
    sealed_settlements = set(listed[len(ids) :])
    for settlement in settlements:
        if settlement_leaf(settlement) not in sealed_settlements:
            raise InvalidBlockError(
                f"the queue settlement of {settlement.transfer_id.hex()[:16]} is not the one"
                " sealed in the block",
                field="queue_settlements",
            )
