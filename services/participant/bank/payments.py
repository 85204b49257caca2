"""A bank node's record of its payments, outgoing and incoming, built from followed blocks.

Rows live in the node's own SQLite file (``NodeDb``) next to the outbox: an outgoing
payment is written with the transaction the node signed, before it is forwarded; an
incoming one when a followed block first shows it. Each followed block updates them
in the same database transaction as the follow position: receipts (SETTLED, QUEUED,
REJECTED), queue settlements (SETTLED or CANCELLED later), this bank's hold, release
and reprioritise operations, and expiry. Every change of status is also appended to
``events``, which ``WatchSettlements`` replays and then follows.

Queue order is the ledger's: priority, then arrival (``seq``: height and position
in the block that carried the transfer).

Besides transfers, the book holds what the central bank did to this bank's account:
each issuance to it (an ``issue`` naming this bank, which its redacted view carries)
and each redemption it signed, once a block applied them (``kind`` ISSUANCE or
REDEMPTION, status SETTLED, the block's height and time, the collateral reference).
They are keyed by transaction id like transfers, so a block seen twice records each
once. They append no ``events``: ``WatchSettlements`` and the payment metrics stay
about transfers, and ``history`` lists them only when asked (``kinds``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from straits.bank.v1 import bank_pb2 as pb
from straits.common.v1 import common_pb2 as common_pb
from straits.ledger.v1 import receipt_pb2 as receipt_pb

from ledger.transaction import Transaction
from services.participant.follower import FollowedBlock
from services.participant.outbox import NodeDb, chunks

OUT, IN = pb.DIRECTION_OUTGOING, pb.DIRECTION_INCOMING
TRANSFER = pb.PAYMENT_KIND_TRANSFER
ISSUANCE, REDEMPTION = pb.PAYMENT_KIND_ISSUANCE, pb.PAYMENT_KIND_REDEMPTION
MAX_PAGE = 1000
DEFAULT_PAGE = 100
# A payment's reason when the liquidity-saving mechanism settled it from the queue.
OFFSETTING = "settled_by_offsetting"
# seq = height * SEQ_SPAN + position in block: blocks carry far fewer transactions.
SEQ_SPAN = 1 << 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    transfer_id BLOB UNIQUE NOT NULL,
    request_id TEXT,
    direction INTEGER NOT NULL,
    payer TEXT NOT NULL,
    payee TEXT NOT NULL,
    amount INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    reference TEXT NOT NULL,
    status INTEGER NOT NULL,
    held INTEGER NOT NULL DEFAULT 0,
    committed_height INTEGER NOT NULL DEFAULT 0,
    settled_height INTEGER NOT NULL DEFAULT 0,
    created_time_ms INTEGER NOT NULL,
    settled_time_ms INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    seq INTEGER NOT NULL DEFAULT 0,
    kind INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS payments_status ON payments (status, priority, seq);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    height INTEGER NOT NULL,
    direction INTEGER NOT NULL,
    payment BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_height ON events (height);
"""

_COLUMNS = (
    "transfer_id, request_id, direction, payer, payee, amount, priority, reference,"
    " status, held, committed_height, settled_height, created_time_ms,"
    " settled_time_ms, reason, detail, kind"
)
# A followed transfer: added when this node did not send it, its outcome set either way.
_CARRIED = (
    "INSERT INTO payments (transfer_id, direction, payer, payee, amount, priority, reference,"
    " status, created_time_ms, committed_height, seq, reason, detail, settled_height,"
    " settled_time_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (transfer_id) DO UPDATE SET status=excluded.status,"
    " committed_height=excluded.committed_height, seq=excluded.seq, reason=excluded.reason,"
    " detail=excluded.detail, settled_height=excluded.settled_height,"
    " settled_time_ms=excluded.settled_time_ms"
)
# A file written before kinds existed holds transfers only: they take the default.
_ADD_KIND = "ALTER TABLE payments ADD COLUMN kind INTEGER NOT NULL DEFAULT 1"

_RECEIPT_STATUS = {
    receipt_pb.OUTCOME_SETTLED: pb.PAYMENT_STATUS_SETTLED,
    receipt_pb.OUTCOME_QUEUED: pb.PAYMENT_STATUS_QUEUED,
    receipt_pb.OUTCOME_REJECTED: pb.PAYMENT_STATUS_REJECTED,
    receipt_pb.OUTCOME_CANCELLED: pb.PAYMENT_STATUS_CANCELLED,
}
_FINAL = (
    pb.PAYMENT_STATUS_SETTLED,
    pb.PAYMENT_STATUS_REJECTED,
    pb.PAYMENT_STATUS_CANCELLED,
    pb.PAYMENT_STATUS_EXPIRED,
)


def _payment(row: Sequence[object]) -> pb.Payment:
    (
        transfer_id,
        request_id,
        direction,
        payer,
        payee,
        amount,
        priority,
        reference,
        status,
        held,
        committed,
        settled,
        created,
        settled_time,
        reason,
        detail,
        kind,
    ) = row
    return pb.Payment(
        transfer_id=transfer_id,
        request_id=request_id or "",
        direction=direction,
        payer=payer,
        payee=payee,
        amount=amount,
        priority=priority,
        reference=reference,
        status=status,
        held=bool(held),
        committed_height=committed,
        settled_height=settled,
        created_time_ms=created,
        settled_time_ms=settled_time,
        reason=reason,
        detail=detail,
        kind=kind,
    )


def _by_id(
    run: Callable[[str, Sequence[object]], Iterable[Sequence[object]]],
    transfer_ids: Sequence[bytes],
) -> dict[bytes, pb.Payment]:
    """The payments of ``transfer_ids`` that exist, read with ``run`` (a query, or the
    open write transaction's ``execute`` to see what it wrote)."""
    found: dict[bytes, pb.Payment] = {}
    for chunk in chunks(transfer_ids):
        for row in run(
            f"SELECT {_COLUMNS} FROM payments WHERE transfer_id IN "
            f"({','.join('?' * len(chunk))})",
            chunk,
        ):
            payment = _payment(row)
            found[payment.transfer_id] = payment
    return found


@dataclass(frozen=True)
class HistoryFilter:
    direction: int = pb.DIRECTION_UNSPECIFIED
    counterparty: str = ""
    statuses: tuple[int, ...] = ()
    from_height: int = 0
    to_height: int = 0
    from_time_ms: int = 0
    to_time_ms: int = 0
    kinds: tuple[int, ...] = (TRANSFER,)


class PaymentBook:
    def __init__(self, db: NodeDb, bank: str, central_bank: str) -> None:
        self._db = db
        self._bank = bank
        self._central_bank = central_bank
        db.script(_SCHEMA)
        columns = {row[1] for row in db.query("PRAGMA table_info(payments)")}
        if "kind" not in columns:
            db.script(_ADD_KIND)

    # --- writes ------------------------------------------------------------------------

    @staticmethod
    def add_outgoing(conn: sqlite3.Connection, tx: Transaction, request_id: str) -> None:
        transfer = tx.body.transfer
        conn.execute(
            "INSERT INTO payments (transfer_id, request_id, direction, payer, payee, amount,"
            " priority, reference, status, created_time_ms) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                tx.id,
                request_id,
                OUT,
                tx.signer,
                transfer.payee,
                transfer.amount,
                transfer.priority,
                transfer.reference,
                pb.PAYMENT_STATUS_PENDING,
                int(time.time() * 1000),
            ),
        )

    def refused(self, transfer_id: bytes, error: common_pb.Error) -> None:
        """A validator refused it before any block: final, and the ledger never saw it."""
        with self._db.write() as conn:
            conn.execute(
                "UPDATE payments SET status=?, reason=?, detail=? WHERE transfer_id=? AND status=?",
                (
                    pb.PAYMENT_STATUS_REJECTED,
                    error.reason,
                    error.detail,
                    transfer_id,
                    pb.PAYMENT_STATUS_PENDING,
                ),
            )

    def record_block(
        self, conn: sqlite3.Connection, block: FollowedBlock, expired: Sequence[bytes]
    ) -> None:
        # A block's transfers are written together (see ``_carried``); anything else this
        # bank did is written in its place, after the transfers before it.
        carried: list[tuple[int, Transaction, receipt_pb.Receipt]] = []
        for position, tx in enumerate(block.transactions):
            receipt = block.receipts.get(tx.id)
            if receipt is None:
                continue
            if tx.kind == "transfer":
                if tx.signer == self._bank or tx.body.transfer.payee == self._bank:
                    carried.append((position, tx, receipt))
                continue
            if receipt.outcome != receipt_pb.OUTCOME_APPLIED:
                continue
            self._carried(conn, block, carried)
            carried = []
            if tx.kind == "issue" and tx.body.issue.bank == self._bank:
                issue = tx.body.issue
                self._booked(
                    conn, block, position, tx, ISSUANCE, issue.amount, issue.collateral_ref
                )
            elif tx.signer == self._bank and tx.kind == "redeem":
                redeem = tx.body.redeem
                self._booked(
                    conn, block, position, tx, REDEMPTION, redeem.amount, redeem.collateral_ref
                )
            elif tx.signer == self._bank:
                self._operated(conn, tx)
        self._carried(conn, block, carried)
        for settlement in block.settlements:
            status = _RECEIPT_STATUS.get(settlement.outcome)
            if status is not None:
                # How it left the queue: by offsetting, or cancelled at the day's close.
                reason = OFFSETTING if settlement.by_offsetting else settlement.reason
                self._change(conn, bytes(settlement.transfer_id), block, status, reason=reason)
        for tx_id in expired:
            self._change(conn, tx_id, block, pb.PAYMENT_STATUS_EXPIRED, only_pending=True)

    def _carried(
        self,
        conn: sqlite3.Connection,
        block: FollowedBlock,
        carried: Sequence[tuple[int, Transaction, receipt_pb.Receipt]],
    ) -> None:
        """Transfers to or from this bank that ``block`` carried, with their receipts.

        One upsert for all of them and their events read back together, not four
        statements each: a bank sees most of a block's transfers, and at a few thousand
        a second those statements were most of its node's CPU (docs/bench.md). A payment
        this node sent is updated; one it first sees here is added with the block's
        time as its creation."""
        if not carried:
            return
        rows = []
        for position, tx, receipt in carried:
            transfer = tx.body.transfer
            status = _RECEIPT_STATUS.get(receipt.outcome, pb.PAYMENT_STATUS_REJECTED)
            settled = status in _FINAL
            rows.append((
                tx.id,
                OUT if tx.signer == self._bank else IN,
                tx.signer,
                transfer.payee,
                transfer.amount,
                transfer.priority,
                transfer.reference,
                status,
                block.timestamp_ms,
                block.height,
                block.height * SEQ_SPAN + position,
                receipt.reason,
                receipt.detail,
                block.height if settled else 0,
                block.timestamp_ms if settled else 0,
            ))
        conn.executemany(_CARRIED, rows)
        self._events(conn, [tx.id for _, tx, _ in carried], block.height)

    def _booked(
        self,
        conn: sqlite3.Connection,
        block: FollowedBlock,
        position: int,
        tx: Transaction,
        kind: int,
        amount: int,
        collateral_ref: str,
    ) -> None:
        """An issuance to, or redemption by, this bank that ``block`` applied: final at once."""
        incoming = kind == ISSUANCE
        request = conn.execute("SELECT request_id FROM outbox WHERE tx_id=?", (tx.id,)).fetchone()
        conn.execute(
            "INSERT OR IGNORE INTO payments (transfer_id, request_id, direction, payer, payee,"
            " amount, priority, reference, status, committed_height, settled_height,"
            " created_time_ms, settled_time_ms, seq, kind) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                tx.id,
                request[0] if request is not None else None,
                IN if incoming else OUT,
                tx.signer if incoming else self._bank,
                self._bank if incoming else self._central_bank,
                amount,
                0,
                collateral_ref,
                pb.PAYMENT_STATUS_SETTLED,
                block.height,
                block.height,
                block.timestamp_ms,
                block.timestamp_ms,
                block.height * SEQ_SPAN + position,
                kind,
            ),
        )

    def _operated(self, conn: sqlite3.Connection, tx: Transaction) -> None:
        body = tx.body
        if tx.kind == "hold":
            conn.execute("UPDATE payments SET held=1 WHERE transfer_id=?", (body.hold.transfer_id,))
        elif tx.kind == "release":
            conn.execute(
                "UPDATE payments SET held=0 WHERE transfer_id=?", (body.release.transfer_id,)
            )
        elif tx.kind == "reprioritise":
            conn.execute(
                "UPDATE payments SET priority=? WHERE transfer_id=?",
                (body.reprioritise.priority, body.reprioritise.transfer_id),
            )

    def _change(
        self,
        conn: sqlite3.Connection,
        transfer_id: bytes,
        block: FollowedBlock,
        status: int,
        only_pending: bool = False,
        reason: str = "",
    ) -> None:
        guard = " AND status=?" if only_pending else ""
        params: tuple[object, ...] = (status, block.height, block.timestamp_ms, reason, transfer_id)
        if only_pending:
            params += (pb.PAYMENT_STATUS_PENDING,)
        cursor = conn.execute(
            "UPDATE payments SET status=?, held=0, settled_height=?, settled_time_ms=?,"
            " reason=? WHERE transfer_id=?" + guard,
            params,
        )
        if cursor.rowcount:
            self._event(conn, transfer_id, block.height)

    @staticmethod
    def _event(conn: sqlite3.Connection, transfer_id: bytes, height: int) -> None:
        PaymentBook._events(conn, [transfer_id], height)

    @staticmethod
    def _events(conn: sqlite3.Connection, transfer_ids: Sequence[bytes], height: int) -> None:
        """Append each payment as it now stands to ``events``, in the order given."""
        found = _by_id(conn.execute, transfer_ids)
        payments = [found[transfer_id] for transfer_id in transfer_ids]
        conn.executemany(
            "INSERT INTO events (height, direction, payment) VALUES (?,?,?)",
            [(height, p.direction, p.SerializeToString()) for p in payments],
        )

    # --- reads -------------------------------------------------------------------------

    def payments(self, transfer_ids: Sequence[bytes]) -> dict[bytes, pb.Payment]:
        return _by_id(self._db.query, transfer_ids)

    def payment(self, transfer_id: bytes) -> pb.Payment | None:
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM payments WHERE transfer_id=?", (transfer_id,)
        )
        return _payment(rows[0]) if rows else None

    def queue(self) -> tuple[list[pb.Payment], list[pb.Payment]]:
        """(outgoing, incoming) payments waiting in queues, in settlement order."""
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM payments WHERE status=? ORDER BY priority, seq",
            (pb.PAYMENT_STATUS_QUEUED,),
        )
        payments = [_payment(r) for r in rows]
        return (
            [p for p in payments if p.direction == OUT],
            [p for p in payments if p.direction == IN],
        )

    def history(
        self, where: HistoryFilter, page_size: int, page_token: int
    ) -> tuple[list[pb.Payment], int]:
        """A page, newest first, and the token of the next page (0 when none)."""
        clauses = [f"kind IN ({','.join('?' * len(where.kinds))})"]
        params: list[object] = list(where.kinds)
        if page_token:
            clauses.append("rowid<?")
            params.append(page_token)
        if where.direction:
            clauses.append("direction=?")
            params.append(where.direction)
        if where.counterparty:
            clauses.append("(CASE direction WHEN ? THEN payee ELSE payer END)=?")
            params += [OUT, where.counterparty]
        if where.statuses:
            clauses.append(f"status IN ({','.join('?' * len(where.statuses))})")
            params += list(where.statuses)
        if where.from_height:
            clauses.append("committed_height>=?")
            params.append(where.from_height)
        if where.to_height:
            clauses.append("committed_height<=?")
            params.append(where.to_height)
        if where.from_time_ms:
            clauses.append("created_time_ms>=?")
            params.append(where.from_time_ms)
        if where.to_time_ms:
            clauses.append("created_time_ms<?")
            params.append(where.to_time_ms)
        size = min(page_size or DEFAULT_PAGE, MAX_PAGE)
        rows = self._db.query(
            f"SELECT rowid, {_COLUMNS} FROM payments WHERE {' AND '.join(clauses)}"
            " ORDER BY rowid DESC LIMIT ?",
            (*params, size + 1),
        )
        page = rows[:size]
        next_token = page[-1][0] if len(rows) > size else 0
        return [_payment(r[1:]) for r in page], next_token

    def events_after(
        self, seq: int, direction: int, limit: int = 500
    ) -> list[tuple[int, int, pb.Payment]]:
        """(seq, height, payment) of events after ``seq``, oldest first."""
        clause, params = ("AND direction=?", (direction,)) if direction else ("", ())
        rows = self._db.query(
            f"SELECT seq, height, payment FROM events WHERE seq>? {clause} ORDER BY seq LIMIT ?",
            (seq, *params, limit),
        )
        return [(s, h, pb.Payment.FromString(p)) for s, h, p in rows]

    def event_seq_before(self, height: int) -> int:
        """The seq from which a watcher replays events of ``height`` on; 0: from the end."""
        if height == 0:
            return int(self._db.query("SELECT COALESCE(MAX(seq), 0) FROM events")[0][0])
        rows = self._db.query("SELECT MIN(seq) FROM events WHERE height>=?", (height,))
        first = rows[0][0]
        if first is None:
            return int(self._db.query("SELECT COALESCE(MAX(seq), 0) FROM events")[0][0])
        return int(first) - 1
