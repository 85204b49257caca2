"""Benchmark: apply + store throughput of transfers on one core, signatures already checked.

What a validator does per committed block, timed end to end: ``apply_block`` (header
checks, admission, the rules, the queue pass, the state root) then ``SqliteStore.commit``
(one database transaction, WAL, synchronous=FULL), for blocks of 2,000 transfers among
ten banks. Signatures are taken as checked (``AlreadyVerified``): the verifier has its
own benchmark. The blocks are built beforehand by a proposer pass, untimed.

Run twice: on an empty store, and on a store that already holds a million transfers
(committed through the same path, untimed), because an index that grows is where a
store slows down. Target: >= 20,000 transfers/s in both.

``python -m clients.bench.apply_store``; also a section of ``make bench-core``.
``python -m clients.bench.apply_store --id-index`` measures the id-index choice.
"""

from __future__ import annotations

import hashlib
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from straits.ledger.v1 import transaction_pb2 as tx_pb

from ledger import block as blocks
from ledger import codec
from ledger.execute import AlreadyVerified, apply_block, execute
from ledger.genesis import Genesis
from ledger.keys import PrivateKey
from ledger.state import NORMAL, State
from ledger.store import SqliteStore
from ledger.store.sqlite import ID_INDEX_BATCH
from ledger.transaction import Transaction

TARGET = 20_000
BLOCK_SIZE = 2_000
# A multiple of the store's id-index batch, so each run pays for its share of batches.
TIMED_BLOCKS = ID_INDEX_BATCH
STORED_BEFORE = 1_000_000
BANKS = tuple(f"bank-{i:02d}" for i in range(10))
CHAIN_ID = "straits-bench"
_VERIFIED = AlreadyVerified()


def _genesis() -> Genesis:
    def key(seed: int) -> str:
        return PrivateKey.from_seed(bytes([seed]) * 32).public_key.to_text()

    participants = [{"id": "central-bank", "role": "central_bank", "name": "CB", "key": key(1)}]
    participants += [
        {"id": b, "role": "bank", "name": b, "key": key(10 + i)} for i, b in enumerate(BANKS)
    ]
    return Genesis.from_dict(
        {
            "chain_id": CHAIN_ID,
            "currency": {"code": "SGD", "decimals": 2},
            "genesis_time_ms": 0,
            "participants": participants,
            "validators": [{"id": "validator-1", "key": key(2)}],
            "parameters": {"max_block_transactions": BLOCK_SIZE},
        }
    )


class _Maker:
    """Structurally valid transactions with placeholder signatures (taken as checked)."""

    def __init__(self) -> None:
        self.nonce = 0

    def make(self, signer: str, height: int, **kind: object) -> Transaction:
        self.nonce += 1
        body = tx_pb.TransactionBody(
            signer=signer, valid_until_height=height + 8, nonce=self.nonce, **kind
        )
        body_bytes = codec.encode(body)
        return Transaction(
            codec.transaction_id(CHAIN_ID, body_bytes), body, body_bytes, bytes(64), CHAIN_ID
        )

    def transfers(self, height: int, count: int) -> list[Transaction]:
        n = len(BANKS)
        # Payee offset 1..n-1 from the payer: every pair of banks, never a self-payment.
        return [
            self.make(
                BANKS[i % n],
                height,
                transfer=tx_pb.Transfer(
                    payee=BANKS[(i % n + 1 + (i // n) % (n - 1)) % n],
                    amount=1 + (self.nonce * 7919) % 1000,
                    priority=NORMAL,
                ),
            )
            for i in range(count)
        ]


def _propose(state: State, transactions: list[Transaction]) -> tuple[blocks.Block, State]:
    execution = execute(state, transactions, verify=_VERIFIED, strict=False)
    block = blocks.build(
        chain_id=CHAIN_ID,
        height=state.height + 1,
        parent_hash=state.head_hash,
        timestamp_ms=state.height + 1,
        proposer="validator-1",
        round=0,
        transactions=execution.transactions,
        state_root=execution.state_root,
        receipts_root=execution.receipts_root,
    )
    return block, execution.for_block(block).state


def _advance(state: State, store: SqliteStore, transactions: list[Transaction]) -> State:
    block, _ = _propose(state, transactions)
    execution = apply_block(state, block, verify=_VERIFIED)
    store.commit(block, execution)
    return execution.state


def _timed_run(state: State, store: SqliteStore, maker: _Maker) -> float:
    """Transfers per second over TIMED_BLOCKS blocks applied and committed."""
    prepared = []
    scratch = state
    for _ in range(TIMED_BLOCKS):
        block, scratch = _propose(scratch, maker.transfers(scratch.height + 1, BLOCK_SIZE))
        prepared.append(block)
    started = time.perf_counter()
    for block in prepared:
        execution = apply_block(state, block, verify=_VERIFIED)
        store.commit(block, execution)
        state = execution.state
    elapsed = time.perf_counter() - started
    return TIMED_BLOCKS * BLOCK_SIZE / elapsed


def _receipts_root_cost(maker: _Maker, repeats: int = 15) -> float:
    """Median µs per transfer of the receipts root of one block of BLOCK_SIZE transfers."""
    issues = [
        maker.make("central-bank", 1, issue=tx_pb.Issue(bank=b, amount=10**15)) for b in BANKS
    ]
    state = execute(State.genesis(_genesis()), issues, verify=_VERIFIED, strict=False).state
    execution = execute(
        state, maker.transfers(state.height + 1, BLOCK_SIZE), verify=_VERIFIED, strict=False
    )
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        execution.receipts_root  # noqa: B018 - computed on every access: the thing timed
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) / len(execution.transactions) * 1e6, 2)


def _funded(store: SqliteStore, maker: _Maker) -> State:
    state = State.genesis(_genesis())
    issues = [
        maker.make("central-bank", 1, issue=tx_pb.Issue(bank=b, amount=10**15)) for b in BANKS
    ]
    return _advance(state, store, issues)


def run() -> dict:
    maker = _Maker()
    with tempfile.TemporaryDirectory() as scratch:
        empty = SqliteStore(Path(scratch) / "empty.db")
        empty_rate = _timed_run(_funded(empty, maker), empty, maker)
        empty.close()

        filled = SqliteStore(Path(scratch) / "filled.db")
        state = _funded(filled, maker)
        started = time.perf_counter()
        for _ in range(STORED_BEFORE // BLOCK_SIZE):
            state = _advance(state, filled, maker.transfers(state.height + 1, BLOCK_SIZE))
        fill_seconds = time.perf_counter() - started
        filled_rate = _timed_run(state, filled, maker)
        filled.close()
    receipts_cost = _receipts_root_cost(maker)
    target = f">= {TARGET:,}"
    return {
        "rows": [
            {
                "metric": "apply+store, empty store",
                "value": round(empty_rate),
                "unit": "transfers/s",
                "target": target,
            },
            {
                "metric": f"apply+store, {STORED_BEFORE:,} stored",
                "value": round(filled_rate),
                "unit": "transfers/s",
                "target": target,
            },
            {
                "metric": "receipts root (in apply+store), per transfer",
                "value": receipts_cost,
                "unit": "µs",
                "target": "-",
            },
        ],
        "block_size": BLOCK_SIZE,
        "timed_blocks": TIMED_BLOCKS,
        "fill_seconds": round(fill_seconds, 1),
    }


def id_index_rates(stored: int = 1_000_000, commits: int = 50) -> dict[str, int]:
    """Raw SQLite, outside Straits' store: rows/s committing 2,000 rows a transaction into
    a table holding ``stored`` rows, with no index on the random id, an index on its
    8-byte integer prefix, or one on the 32-byte id. The measurement behind batching
    the store's id index (docs/ledger.md)."""

    def rows(first: int, last: int) -> list[tuple]:
        out = []
        for n in range(first, last):
            digest = hashlib.sha256(n.to_bytes(8, "big")).digest()
            out.append((n, digest, int.from_bytes(digest[:8], "big", signed=True), digest * 3))
        return out

    rates = {}
    for index in ("none", "prefix", "id"):
        with tempfile.TemporaryDirectory() as scratch:
            db = sqlite3.connect(Path(scratch) / "ids.db", isolation_level=None)
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "cache_size=-65536"):
                db.execute(f"PRAGMA {pragma}")
            db.execute(
                "CREATE TABLE t (key INTEGER PRIMARY KEY, id BLOB, prefix INTEGER, body BLOB)"
            )
            if index != "none":
                db.execute(f"CREATE INDEX t_{index} ON t ({index})")
            db.execute("BEGIN")
            db.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows(0, stored))
            db.execute("COMMIT")
            batches = [
                rows(stored + i * BLOCK_SIZE, stored + (i + 1) * BLOCK_SIZE) for i in range(commits)
            ]
            started = time.perf_counter()
            for batch in batches:
                db.execute("BEGIN")
                db.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", batch)
                db.execute("COMMIT")
            rates[index] = round(commits * BLOCK_SIZE / (time.perf_counter() - started))
            db.close()
    return rates


if __name__ == "__main__":
    if sys.argv[1:] == ["--id-index"]:
        for index, rate in id_index_rates().items():
            print(f"index on {index:<8} {rate:>10,} rows/s")
    else:
        for row in run()["rows"]:
            print(f"{row['metric']:<40} {row['value']:>10,} {row['unit']} (target {row['target']})")
