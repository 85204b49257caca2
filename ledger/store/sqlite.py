"""SQLite store: WAL, one database transaction per block, all of Straits' SQL in this module.

Layout (schema version in ``meta``, checked at open; ``SchemaVersionError`` if it differs):

* ``blocks``: header bytes, hash and seals by height.
* ``transactions``: ``key = height << 20 | index`` (INTEGER PRIMARY KEY, so rows append
  in time order instead of landing at random in a B-tree), the body and signature as
  signed, the receipt, and ``id_prefix`` for the id lookup (the first 8 bytes of the id
  as a signed integer; the full id is compared after). No index by account: a
  participant's history is its own node's (a bank node's book, ``BankService.History``),
  and two secondary indexes cost every validator 2-3 µs of each payment's commit
  (docs/bench.md, fifth round). Up to schema 3 they were there, on ``signer`` and
  ``counterparty`` columns; opening such a store for writing drops the indexes and
  leaves the columns empty from then on.
* ``transaction_ids``: the id lookup index, ``(id_prefix, key)`` where ``id_prefix`` is
  the first 8 bytes of the id as a signed integer (the full id is compared after).
  Ids are random, so inserting a block's 2,000 ids one block at a time dirties ~2,000
  random index pages per commit once the index is large (measured: 12k transfers/s
  instead of 40k with a million stored, docs/ledger.md). So ids join the index sorted,
  ``ID_INDEX_BATCH`` blocks at a time, inside the commit of the block that completes a
  batch; the ids of the blocks since are looked up in ``_recent_ids``, a dict rebuilt at
  open from the tail of ``transactions``.
* ``settlements``: queued transfers that settled or were cancelled, by block, with how
  (by offsetting; cancelled at the close of the day).
* ``accounts`` (with each bank's limits and day figures as JSON in ``day``), ``queue``
  and the ``state`` row of ``meta``: the State after the head
  block, written as the delta each block made. The replay window is not stored: it is
  the ids of the last ``max_transaction_lifetime`` blocks, read back from
  ``transactions`` at load. A loaded state is checked against the head's state root.

Schema creation and reads go through ``sqlite_utils``; the per-block commit uses the
raw ``sqlite3`` connection and ``executemany``. ``synchronous=FULL`` so a committed
block (hence an acknowledged payment) survives a power cut, at one fsync per block.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sqlite_utils
from straits.ledger.v1 import block_pb2 as block_pb
from straits.ledger.v1 import receipt_pb2 as receipt_pb
from straits.ledger.v1 import transaction_pb2 as tx_pb

from ledger import codec
from ledger.block import Block, Seal
from ledger.errors import SchemaVersionError, StoreError, expected
from ledger.execute import Execution
from ledger.state import (
    State,
)
from ledger.store import records
from ledger.store.base import (
    INDEX_BITS,
    Store,
    TransactionRecord,
    check_commit,
    record_key,
)
from ledger.transaction import Transaction

SCHEMA_VERSION = 4  # 3: the replay window hashed per block and bucket; 4: no account index
# A schema 3 store is brought to 4 when opened for writing (``_drop_account_index``).
_WITH_ACCOUNT_INDEX = 3
ID_INDEX_BATCH = 64
# SQLite's page cache, in KiB. Apply + store with a million transfers stored is as fast
# with 16 MiB as with 64 (docs/runtime.md): a page past it is one read from the
# operating system's file cache, which does not count against the process. Small, so
# a validator's memory stops growing within minutes of start, not after twelve.
PAGE_CACHE_KIB = 16 * 1024
T = TypeVar("T")

_INSERT_BLOCK = "INSERT INTO blocks (height, hash, header, seals) VALUES (?, ?, ?, ?)"
_INSERT_TRANSACTION = (
    "INSERT INTO transactions (key, id_prefix, id, valid_until, body, signature, outcome,"
    " reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_SETTLEMENT = (
    "INSERT INTO settlements (key, transfer_prefix, transfer_id, outcome, by_offsetting, reason)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_PUT_ACCOUNT = (
    "INSERT OR REPLACE INTO accounts (id, role, key, name, suspended, balance, day)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_PUT_QUEUED = (
    "INSERT OR REPLACE INTO queue (seq, transfer_id, payer, payee, amount, priority,"
    " queued_height, held) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_DELETE_QUEUED = "DELETE FROM queue WHERE seq = ?"
_PUT_META = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"
_TRANSACTION_COLUMNS = "key, body, signature, id, outcome, reason, detail"
# Ids join the lookup index sorted, ID_INDEX_BATCH blocks at a time (see module docstring).
_INDEX_IDS = (
    "INSERT INTO transaction_ids (id_prefix, key)"
    " SELECT id_prefix, key FROM transactions WHERE key >= ? ORDER BY id_prefix"
)
_SELECT_SETTLED = (
    "SELECT key, outcome, by_offsetting, reason FROM settlements"
    " WHERE transfer_prefix = ? AND transfer_id = ?"
)


def _locked(method: Callable[..., T]) -> Callable[..., T]:
    """One caller at a time: a reader on another thread must never see half a commit."""

    @functools.wraps(method)
    def locked(self: SqliteStore, *args: object, **kwargs: object) -> T:
        with self._lock:
            return method(self, *args, **kwargs)

    return locked


def _settlement(
    transfer_id: bytes, outcome: int, by_offsetting: int, reason: str | None
) -> receipt_pb.QueueSettlement:
    return receipt_pb.QueueSettlement(
        transfer_id=transfer_id,
        outcome=outcome,
        by_offsetting=bool(by_offsetting),
        reason=reason or "",
    )


def _prefix(identifier: bytes) -> int:
    return int.from_bytes(identifier[:8], "big", signed=True)


class SqliteStore(Store):
    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        """``read_only`` opens an existing store without ever writing to it (an audit of
        a copy): SQLite refuses every write on such a connection."""
        self._lock = threading.RLock()
        self._read_only = read_only
        if read_only:
            if not Path(path).is_file():
                raise StoreError(expected("an existing SQLite file", str(path)), field="path")
            uri = f"{Path(path).resolve().as_uri()}?mode=ro"
            self._conn = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False
            )
            try:
                self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.DatabaseError as exc:
                self._conn.close()
                raise StoreError(f"expected a SQLite database at {path}: {exc}") from exc
        else:
            self._conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
        self._db = sqlite_utils.Database(self._conn)
        self._open_schema()
        state = self._meta_json("state")
        self._chain_id: str | None = state["chain_id"] if state else None
        self._head: int = state["height"] if state else 0
        # Ids of the blocks above ``_ids_indexed_to`` are not in ``transaction_ids`` yet.
        self._ids_indexed_to: int = self._meta_json("ids_indexed_to")  # type: ignore[assignment]
        self._recent_ids: dict[bytes, int] = dict(
            self._conn.execute(
                "SELECT id, key FROM transactions WHERE key >= ?",
                (record_key(self._ids_indexed_to + 1, 0),),
            )
        )

    @property
    def connection(self) -> sqlite3.Connection:
        """The raw connection, for fault-injection tests and the benchmark's bulk fill."""
        return self._conn

    # --- schema -----------------------------------------------------------------------

    def _open_schema(self) -> None:
        tables = self._db.table_names()
        if "meta" in tables:
            version = self._meta_json("schema_version")
            if version == _WITH_ACCOUNT_INDEX:
                self._drop_account_index()
            elif version != SCHEMA_VERSION:
                raise SchemaVersionError(expected(f"schema version {SCHEMA_VERSION}", version))
            return
        if self._read_only:
            raise StoreError(expected("a Straits ledger store", f"tables {tables}"))
        db = self._db
        self._conn.execute("BEGIN IMMEDIATE")
        db["meta"].create({"key": str, "value": str}, pk="key")
        db["blocks"].create(
            {"height": int, "hash": bytes, "header": bytes, "seals": bytes}, pk="height"
        )
        db["transactions"].create(
            {
                "key": int,
                "id_prefix": int,
                "id": bytes,
                "valid_until": int,
                "body": bytes,
                "signature": bytes,
                "outcome": int,
                "reason": str,
                "detail": str,
            },
            pk="key",
        )
        db.execute(
            "CREATE TABLE transaction_ids (id_prefix INTEGER NOT NULL, key INTEGER NOT NULL,"
            " PRIMARY KEY (id_prefix, key)) WITHOUT ROWID"
        )
        db["settlements"].create(
            {
                "key": int,
                "transfer_prefix": int,
                "transfer_id": bytes,
                "outcome": int,
                "by_offsetting": int,
                "reason": str,
            },
            pk="key",
        )
        db["settlements"].create_index(["transfer_prefix"], index_name="settlements_by_transfer")
        db["accounts"].create(
            {
                "id": str,
                "role": str,
                "key": str,
                "name": str,
                "suspended": int,
                "balance": int,
                "day": str,
            },
            pk="id",
        )
        db["queue"].create(
            {
                "seq": int,
                "transfer_id": bytes,
                "payer": str,
                "payee": str,
                "amount": int,
                "priority": int,
                "queued_height": int,
                "held": int,
            },
            pk="seq",
        )
        self._conn.execute(_PUT_META, ("schema_version", json.dumps(SCHEMA_VERSION)))
        self._conn.execute(_PUT_META, ("ids_indexed_to", "0"))
        self._conn.execute("COMMIT")

    def _drop_account_index(self) -> None:
        """Schema 3 to 4 in place: the account indexes go, and with them their cost on
        every commit. Nothing else differs: the ``signer`` and ``counterparty`` columns
        stay (dropping a column rewrites the table) and are left empty from here on;
        no read names them. Read only, a schema 3 store is read as it is."""
        if self._read_only:
            return
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DROP INDEX IF EXISTS transactions_by_signer")
            conn.execute("DROP INDEX IF EXISTS transactions_by_counterparty")
            conn.execute(_PUT_META, ("schema_version", json.dumps(SCHEMA_VERSION)))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _meta_json(self, key: str) -> object:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    # --- commit ----------------------------------------------------------------------

    @_locked
    def commit(self, block: Block, execution: Execution) -> None:
        check_commit(self, block, execution)
        state = execution.state
        if self._chain_id is not None and state.chain_id != self._chain_id:
            raise StoreError(expected(f"chain {self._chain_id!r}", state.chain_id), field="block")
        base = block.height << INDEX_BITS
        transactions = []
        for index, (t, receipt) in enumerate(
            zip(block.transactions, execution.receipts, strict=True)
        ):
            transactions.append(
                (
                    base | index,
                    _prefix(t.id),
                    t.id,
                    t.body.valid_until_height,
                    t.body_bytes,
                    t.signature,
                    receipt.outcome,
                    receipt.reason or None,
                    receipt.detail or None,
                )
            )
        settlements = [
            (
                base | i,
                _prefix(s.transfer_id),
                s.transfer_id,
                s.outcome,
                int(s.by_offsetting),
                s.reason or None,
            )
            for i, s in enumerate(execution.settlements)
        ]
        changed = state.participants if self._head == 0 else execution.changed_accounts
        accounts = [records.account_row(state, account) for account in changed]
        removed = [(seq,) for seq, entry in execution.queue_changes.items() if entry is None]
        queued = [records.queue_row(e) for e in execution.queue_changes.values() if e is not None]
        seals = block_pb.Block(
            seals=[
                block_pb.CommitSeal(validator=s.validator, signature=s.signature)
                for s in block.seals
            ]
        ).SerializeToString()
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(_INSERT_BLOCK, (block.height, block.hash, block.header_bytes, seals))
            conn.executemany(_INSERT_TRANSACTION, transactions)
            conn.executemany(_INSERT_SETTLEMENT, settlements)
            conn.executemany(_PUT_ACCOUNT, accounts)
            conn.executemany(_DELETE_QUEUED, removed)
            conn.executemany(_PUT_QUEUED, queued)
            conn.execute(_PUT_META, ("state", json.dumps(records.state_meta(state))))
            index_ids = block.height - self._ids_indexed_to >= ID_INDEX_BATCH
            if index_ids:
                conn.execute(_INDEX_IDS, (record_key(self._ids_indexed_to + 1, 0),))
                conn.execute(_PUT_META, ("ids_indexed_to", json.dumps(block.height)))
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"block {block.height} not committed: {exc}") from exc
            raise
        self._chain_id = state.chain_id
        self._head = block.height
        if index_ids:
            self._ids_indexed_to = block.height
            self._recent_ids = {}
        else:
            self._recent_ids.update((row[2], row[0]) for row in transactions)

    def head_height(self) -> int:
        return self._head

    # --- state -------------------------------------------------------------------------

    @_locked
    def load_state(self) -> State | None:
        meta = self._meta_json("state")
        if meta is None:
            return None
        height = meta["height"]  # type: ignore[index]
        lifetime = records.parameters(meta).max_transaction_lifetime  # type: ignore[arg-type]
        # An id stays remembered while valid_until > height, and valid_until is at most
        # lifetime past the block that carried it: only the last `lifetime` blocks count.
        replay_ids = self._conn.execute(
            "SELECT key, valid_until, id FROM transactions WHERE key >= ? AND valid_until > ?"
            " ORDER BY key",
            (record_key(max(height - lifetime, 0), 0), height),
        )
        state = records.state_from_rows(
            meta,  # type: ignore[arg-type]
            self._db.query("SELECT * FROM accounts ORDER BY id"),
            self._db.query("SELECT * FROM queue ORDER BY seq"),
            replay_ids,
        )
        head = self.block(height)
        if head is None or head.header.state_root != state.root():
            raise StoreError(
                f"expected the stored state to match block {height}'s state root, it does not"
            )
        return state

    # --- reads ------------------------------------------------------------------------

    def block(self, height: int) -> Block | None:
        found = self.blocks(height, 1)
        return found[0] if found and found[0].height == height else None

    @_locked
    def blocks(self, from_height: int, limit: int) -> list[Block]:
        if limit <= 0 or self._chain_id is None:
            return []
        rows = self._conn.execute(
            "SELECT height, hash, header, seals FROM blocks"
            " WHERE height >= ? ORDER BY height LIMIT ?",
            (from_height, limit),
        ).fetchall()
        if not rows:
            return []
        transactions: dict[int, list[Transaction]] = {}
        for key, body, signature in self._conn.execute(
            "SELECT key, body, signature FROM transactions WHERE key >= ? AND key < ? ORDER BY key",
            (record_key(rows[0][0], 0), record_key(rows[-1][0] + 1, 0)),
        ):
            transactions.setdefault(key >> INDEX_BITS, []).append(self._decode(body, signature))
        found = []
        for height, block_hash, header, seals in rows:
            sealed = codec.decode(block_pb.Block, seals)
            carried = tuple(transactions.get(height, ()))
            decoded = codec.decode(block_pb.BlockHeader, header)
            if codec.merkle_root([t.id for t in carried]) != decoded.transactions_root:
                # A stored body changed behind the store's back: never serve the block.
                raise StoreError(
                    f"the stored transactions of block {height} no longer make its"
                    " transactions root: the store is damaged",
                    field="transactions",
                )
            found.append(
                Block(
                    header=decoded,
                    header_bytes=header,
                    hash=block_hash,
                    transactions=carried,
                    seals=tuple(Seal(s.validator, s.signature) for s in sealed.seals),
                )
            )
        return found

    def _decode(self, body: bytes, signature: bytes) -> Transaction:
        signed = tx_pb.SignedTransaction(body=body, signature=signature)
        return Transaction.from_proto(self._chain_id or "", signed)

    def _record(self, row: tuple) -> TransactionRecord:
        key, body, signature, transaction_id, outcome, reason, detail = row
        transaction = self._decode(body, signature)
        if transaction.id != transaction_id:
            # The row was changed behind the store's back: never serve it as that id.
            raise StoreError(
                f"stored transaction {bytes(transaction_id).hex()[:16]} (block"
                f" {key >> INDEX_BITS}) no longer hashes to its id: the store is damaged",
                field="transactions",
            )
        receipt = receipt_pb.Receipt(
            transaction_id=transaction_id, outcome=outcome, reason=reason or "", detail=detail or ""
        )
        settled = self._conn.execute(
            _SELECT_SETTLED, (_prefix(transaction_id), transaction_id)
        ).fetchone()
        settlement = settled_height = None
        if settled is not None:
            settlement = _settlement(transaction_id, *settled[1:])
            settled_height = settled[0] >> INDEX_BITS
        return TransactionRecord(
            key >> INDEX_BITS,
            key & ((1 << INDEX_BITS) - 1),
            transaction,
            receipt,
            settlement,
            settled_height,
        )

    @_locked
    def transaction(self, transaction_id: bytes) -> TransactionRecord | None:
        key = self._recent_ids.get(transaction_id)
        if key is not None:
            row = self._conn.execute(
                f"SELECT {_TRANSACTION_COLUMNS} FROM transactions WHERE key = ?", (key,)
            ).fetchone()
        else:
            row = self._conn.execute(
                f"SELECT {_TRANSACTION_COLUMNS} FROM transactions WHERE key IN"
                " (SELECT key FROM transaction_ids WHERE id_prefix = ?) AND id = ?",
                (_prefix(transaction_id), transaction_id),
            ).fetchone()
        return self._record(row) if row else None

    @_locked
    def receipts(self, height: int) -> list[receipt_pb.Receipt]:
        rows = self._conn.execute(
            "SELECT id, outcome, reason, detail FROM transactions"
            " WHERE key >= ? AND key < ? ORDER BY key",
            (record_key(height, 0), record_key(height + 1, 0)),
        )
        return [
            receipt_pb.Receipt(transaction_id=i, outcome=o, reason=r or "", detail=d or "")
            for i, o, r, d in rows
        ]

    @_locked
    def settlements(self, height: int) -> list[receipt_pb.QueueSettlement]:
        rows = self._conn.execute(
            "SELECT transfer_id, outcome, by_offsetting, reason FROM settlements"
            " WHERE key >= ? AND key < ? ORDER BY key",
            (record_key(height, 0), record_key(height + 1, 0)),
        )
        return [_settlement(*row) for row in rows]

    # --- rows as stored, for an audit -------------------------------------------------

    @_locked
    def stored_blocks(self, from_height: int, limit: int) -> list[records.StoredBlock]:
        """Blocks from ``from_height`` as their rows hold them, nothing decoded or checked:
        an audit must see a damaged row as it is, not fail to read its neighbours."""
        rows = self._conn.execute(
            "SELECT height, hash, header, seals FROM blocks"
            " WHERE height >= ? ORDER BY height LIMIT ?",
            (from_height, limit),
        ).fetchall()
        if not rows:
            return []
        low, high = record_key(rows[0][0], 0), record_key(rows[-1][0] + 1, 0)
        transactions: dict[int, list[records.StoredTransaction]] = {}
        for key, body, signature, tx_id, outcome, reason, detail in self._conn.execute(
            f"SELECT {_TRANSACTION_COLUMNS} FROM transactions WHERE key >= ? AND key < ?"
            " ORDER BY key",
            (low, high),
        ):
            transactions.setdefault(key >> INDEX_BITS, []).append(
                records.StoredTransaction(body, signature, tx_id, outcome, reason, detail)
            )
        settlements: dict[int, list[tuple[bytes, int, bool, str]]] = {}
        for key, transfer_id, outcome, by_offsetting, reason in self._conn.execute(
            "SELECT key, transfer_id, outcome, by_offsetting, reason FROM settlements"
            " WHERE key >= ? AND key < ?"
            " ORDER BY key",
            (low, high),
        ):
            settlements.setdefault(key >> INDEX_BITS, []).append(
                (transfer_id, outcome, bool(by_offsetting), reason or "")
            )
        return [
            records.StoredBlock(
                height,
                block_hash,
                header,
                seals,
                tuple(transactions.get(height, ())),
                tuple(settlements.get(height, ())),
            )
            for height, block_hash, header, seals in rows
        ]

    @_locked
    def stored_state(self) -> records.StoredState | None:
        """The head state's rows as stored (``load_state`` would refuse a damaged one)."""
        meta = self._meta_json("state")
        if meta is None:
            return None
        return records.StoredState(
            meta,  # type: ignore[arg-type]
            tuple(self._db.query("SELECT * FROM accounts ORDER BY id")),
            tuple(self._db.query("SELECT * FROM queue ORDER BY seq")),
        )

    # --- consensus record ---------------------------------------------------------------

    @_locked
    def save_last_signed(self, record: bytes) -> None:
        # Kept as a blob: a record carries a whole prepared block, and writing it as hex
        # text doubled what every commit message wrote and fsynced.
        with self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_signed', ?)",
                (bytes(record),),
            )

    @_locked
    def load_last_signed(self) -> bytes | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'last_signed'").fetchone()
        if row is None:
            return None
        value = row[0]
        # A store written before the record was a blob holds it as hex text.
        return bytes.fromhex(value) if isinstance(value, str) else bytes(value)

    @_locked
    def close(self) -> None:
        self._conn.close()

    @_locked
    def damage(self) -> list[str]:
        """SQLite's ``quick_check``: page, record and index structure (not index content)."""
        try:
            rows = self._conn.execute("PRAGMA quick_check(20)").fetchall()
        except sqlite3.DatabaseError as exc:
            return [f"quick_check could not run: {exc}"]
        return [] if rows == [("ok",)] else [str(r[0]) for r in rows]
