"""A participant node's own SQLite file: what it signed, and how far it has followed.

``NodeDb`` is the one connection (WAL; one writer at a time under a lock). Every
component keeps its tables in it, so that a followed block's effects — on the
outbox, on a bank's payments, on the follow position — land in one database
transaction: after a crash the node holds either all of a block or none of it.

``Outbox`` records every transaction the node signs *before* it is forwarded, with
the client's ``request_id`` (unique) and a fingerprint of the request's content.
That is what makes retries safe: a request id seen before returns the transaction
signed then, and the node never signs a second one for it. An entry is ``pending``
until a followed block carries it (``committed``, with its receipt), a validator
refuses it for good (``refused``), or a block passes its ``valid_until_height``
without it (``expired``: the ledger can never take it after that).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from straits.common.v1 import common_pb2 as common_pb
from straits.ledger.v1 import receipt_pb2 as receipt_pb

from ledger.errors import SchemaVersionError, expected
from ledger.transaction import Transaction

SCHEMA_VERSION = 1
PENDING, COMMITTED, REFUSED, EXPIRED = "pending", "committed", "refused", "expired"
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    tx_id BLOB PRIMARY KEY,
    request_id TEXT UNIQUE,
    fingerprint BLOB,
    kind TEXT NOT NULL,
    signed BLOB NOT NULL,
    valid_until INTEGER NOT NULL,
    state TEXT NOT NULL,
    height INTEGER NOT NULL DEFAULT 0,
    receipt BLOB,
    error BLOB,
    sent_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (state, valid_until);
"""


class NodeDb:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.lock = threading.RLock()
        self.script(_SCHEMA)
        with self.write() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            elif int(row[0]) != SCHEMA_VERSION:
                raise SchemaVersionError(
                    expected(f"schema {SCHEMA_VERSION}", row[0]), field=str(path)
                )

    def script(self, sql: str) -> None:
        """Runs schema statements (``executescript`` manages its own transaction)."""
        with self.lock:
            self.conn.executescript(sql)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:  # type: ignore[type-arg]
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def get_meta(self, key: str, default: bytes | int | str) -> bytes | int | str:
        rows = self.query("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else default

    @staticmethod
    def set_meta(conn: sqlite3.Connection, key: str, value: bytes | int | str) -> None:
        conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def close(self) -> None:
        with self.lock:
            self.conn.close()


@dataclass(frozen=True)
class Entry:
    """One signed transaction of this node and what has become of it."""

    transaction: Transaction
    request_id: str | None
    fingerprint: bytes
    state: str
    height: int
    receipt: receipt_pb.Receipt | None
    error: common_pb.Error | None

    def commit(self) -> common_pb.Commit | None:
        if self.receipt is None:
            return None
        return common_pb.Commit(
            transaction_id=self.transaction.id, height=self.height, receipt=self.receipt
        )


class Outbox:
    def __init__(self, db: NodeDb, chain_id: str) -> None:
        self._db = db
        self._chain_id = chain_id

    def by_request(self, request_id: str) -> Entry | None:
        return self._one("request_id=?", request_id)

    def by_requests(self, request_ids: Sequence[str]) -> dict[str, Entry]:
        """The entries of those request ids that have one."""
        found: dict[str, Entry] = {}
        for chunk in chunks(request_ids):
            rows = self._db.query(
                f"SELECT {_COLUMNS} FROM outbox WHERE request_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for row in rows:
                entry = self._entry(row)
                found[entry.request_id or ""] = entry
        return found

    def by_id(self, tx_id: bytes) -> Entry | None:
        return self._one("tx_id=?", tx_id)

    def known(self, tx_ids: Sequence[bytes]) -> set[bytes]:
        """Those of ``tx_ids`` this node signed."""
        return _signed_here(self._db.query, tx_ids)

    def _one(self, where: str, key: object) -> Entry | None:
        rows = self._db.query(f"SELECT {_COLUMNS} FROM outbox WHERE {where}", (key,))
        return self._entry(rows[0]) if rows else None

    def _entry(self, row: tuple) -> Entry:  # type: ignore[type-arg]
        signed, request_id, fingerprint, state, height, receipt, error = row
        return Entry(
            transaction=Transaction.decode(self._chain_id, signed),
            request_id=request_id,
            fingerprint=fingerprint or b"",
            state=state,
            height=height,
            receipt=receipt_pb.Receipt.FromString(receipt) if receipt else None,
            error=common_pb.Error.FromString(error) if error else None,
        )

    @staticmethod
    def add(
        conn: sqlite3.Connection, tx: Transaction, request_id: str | None, fingerprint: bytes
    ) -> None:
        """Records ``tx`` before it leaves the node (inside the caller's transaction)."""
        conn.execute(
            "INSERT INTO outbox (tx_id, request_id, fingerprint, kind, signed, valid_until, state,"
            " sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                tx.id,
                request_id,
                fingerprint,
                tx.kind,
                tx.encode(),
                tx.body.valid_until_height,
                PENDING,
                time.time(),
            ),
        )

    def refuse(self, tx_id: bytes, error: common_pb.Error) -> None:
        with self._db.write() as conn:
            conn.execute(
                "UPDATE outbox SET state=?, error=? WHERE tx_id=? AND state=?",
                (REFUSED, error.SerializeToString(), tx_id, PENDING),
            )

    def sent(self, tx_ids: Sequence[bytes]) -> None:
        now = time.time()
        with self._db.write() as conn:
            conn.executemany(
                "UPDATE outbox SET sent_at=? WHERE tx_id=?", [(now, i) for i in tx_ids]
            )

    def unsent_since(self, before: float, limit: int) -> list[Transaction]:
        """Pending transactions last forwarded before ``before``: to forward again."""
        rows = self._db.query(
            "SELECT signed FROM outbox WHERE state=? AND sent_at<? ORDER BY sent_at LIMIT ?",
            (PENDING, before, limit),
        )
        return [Transaction.decode(self._chain_id, r[0]) for r in rows]

    @staticmethod
    def committed(
        conn: sqlite3.Connection, height: int, carried: Sequence[tuple[bytes, receipt_pb.Receipt]]
    ) -> set[bytes]:
        """Marks the carried transactions this node signed; returns their ids.

        A block carries mostly others' transactions (all of them, to the central bank's
        node): their ids are looked up a chunk at a time and only this node's own are
        written, not one UPDATE per transaction that matches nothing.
        """
        own = _signed_here(conn.execute, [tx_id for tx_id, _ in carried])
        conn.executemany(
            "UPDATE outbox SET state=?, height=?, receipt=? WHERE tx_id=?",
            [(COMMITTED, height, receipt.SerializeToString(), tx_id)
             for tx_id, receipt in carried if tx_id in own],
        )
        return own

    @staticmethod
    def expire(conn: sqlite3.Connection, height: int) -> list[bytes]:
        """Pending entries no block after ``height`` may carry: now expired for good."""
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT tx_id FROM outbox WHERE state=? AND valid_until<=?", (PENDING, height)
            )
        ]
        conn.executemany("UPDATE outbox SET state=? WHERE tx_id=?", [(EXPIRED, i) for i in ids])
        return ids


_COLUMNS = "signed, request_id, fingerprint, state, height, receipt, error"
# Keys per IN (...) list: well under SQLite's limit on bound parameters.
CHUNK = 500


def _signed_here(
    run: Callable[[str, Sequence[object]], Iterable[Sequence[object]]], tx_ids: Sequence[bytes]
) -> set[bytes]:
    """Those of ``tx_ids`` in the outbox, read with ``run`` (a query, or the open write
    transaction's ``execute``), a chunk of ids at a time."""
    found: set[bytes] = set()
    for chunk in chunks(tx_ids):
        found.update(bytes(r[0]) for r in run(
            f"SELECT tx_id FROM outbox WHERE tx_id IN ({','.join('?' * len(chunk))})", chunk))
    return found


def chunks(keys: Sequence[T]) -> list[list[T]]:
    return [list(keys[i : i + CHUNK]) for i in range(0, len(keys), CHUNK)]
