"""The store contract, told once and run against the in-memory and the SQLite store alike."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from straits.ledger.v1 import receipt_pb2 as receipt_pb

from ledger.block import make_seal
from ledger.errors import SchemaVersionError, StoreError
from ledger.execute import InlineCheck, execute
from ledger.store import MemoryStore, SqliteStore, Store
from ledger.store.sqlite import ID_INDEX_BATCH, SCHEMA_VERSION
from tests.ledger.conftest import Chain, key

OpenStore = Callable[[], Store]


@pytest.fixture(params=["memory", "sqlite"])
def open_store(request, tmp_path: Path) -> OpenStore:
    if request.param == "memory":
        store = MemoryStore()
        return lambda: store
    return lambda: SqliteStore(tmp_path / "ledger.db")


def commit(chain: Chain, store: Store, *transactions):
    execution = chain.commit(*transactions)
    block = chain.blocks[-1]
    sealed = block.with_seals(
        [
            make_seal(chain.genesis.chain_id, block.hash, v, key(v))
            for v in sorted(chain.state.validators_for(block.height))[:3]
        ]
    )
    store.commit(sealed, execution)
    return execution


def test_a_fresh_store_holds_nothing(open_store):
    store = open_store()
    assert (store.load_state(), store.head_height(), store.block(1)) == (None, 0, None)
    assert store.blocks(1, 10) == [] and store.load_last_signed() is None


def test_reopened_store_gives_back_the_same_state_blocks_and_receipts(open_store):
    chain, store = Chain(), open_store()
    commit(chain, store, chain.issue("bank-a", 1_000), chain.issue("bank-b", 10))
    queued = chain.transfer("bank-b", "bank-c", 500)
    commit(chain, store, queued, chain.transfer("bank-a", "bank-b", 300), chain.redeem("bank-c", 1))
    settling = commit(chain, store, chain.transfer("bank-a", "bank-b", 200))
    store.close()

    store = open_store()
    state = store.load_state()
    assert state.root() == chain.state.root() == chain.blocks[-1].header.state_root
    assert state.head_hash == chain.blocks[-1].hash and state.height == 3
    assert dict(state.balances) == dict(chain.state.balances)
    assert [b.hash for b in store.blocks(1, 10)] == [b.hash for b in chain.blocks]
    assert (
        len(store.block(2).seals) == 3
        and store.block(2).transactions == chain.blocks[1].transactions
    )
    assert [r.outcome for r in store.receipts(2)] == [
        receipt_pb.OUTCOME_QUEUED,
        receipt_pb.OUTCOME_SETTLED,
        receipt_pb.OUTCOME_REJECTED,
    ]
    record = store.transaction(queued.id)
    assert (record.height, record.index, record.transaction) == (2, 0, queued)
    assert record.settlement.outcome == receipt_pb.OUTCOME_SETTLED and record.settled_height == 3
    assert list(store.settlements(3)) == list(settling.settlements)
    assert store.transaction(b"\x00" * 32) is None


def test_commits_continue_after_a_reopen(open_store):
    chain, store = Chain(), open_store()
    commit(chain, store, chain.issue("bank-a", 100))
    store.close()
    store = open_store()
    chain.state = store.load_state()
    commit(chain, store, chain.transfer("bank-a", "bank-c", 60))
    assert store.head_height() == 2 and store.load_state().balances["bank-c"] == 60


def test_ids_are_found_before_and_after_they_join_the_lookup_index(open_store):
    chain, store = Chain(), open_store()
    early = chain.issue("bank-a", 5)
    commit(chain, store, early)
    for _ in range(ID_INDEX_BATCH):
        commit(chain, store)
    late = chain.issue("bank-b", 7)
    commit(chain, store, late)
    store.close()
    store = open_store()
    assert store.transaction(early.id).height == 1
    assert store.transaction(late.id).height == ID_INDEX_BATCH + 2


def test_commit_refuses_a_block_out_of_order_and_writes_nothing(open_store):
    chain, store = Chain(), open_store()
    commit(chain, store, chain.issue("bank-a", 5))
    chain.commit(chain.issue("bank-a", 6))
    execution = chain.commit(chain.issue("bank-a", 7))
    with pytest.raises(StoreError) as raised:
        store.commit(chain.blocks[-1], execution)
    assert raised.value.field == "block.height"
    assert store.head_height() == 1 and store.load_state().balances["bank-a"] == 5


def test_commit_refuses_an_execution_not_stamped_with_its_block(open_store):
    chain, store = Chain(), open_store()
    block, _ = chain.propose([chain.issue("bank-a", 5)])
    unstamped = execute(chain.state, list(block.transactions), verify=InlineCheck(), strict=True)
    with pytest.raises(StoreError) as raised:
        store.commit(block, unstamped)
    assert raised.value.field == "execution" and store.head_height() == 0


def test_last_signed_record_survives_a_reopen(open_store):
    store = open_store()
    store.save_last_signed(b"\x01height 7 round 2 commit")
    store.save_last_signed(b"\x01height 8 round 0 prepare")
    store.close()
    assert open_store().load_last_signed() == b"\x01height 8 round 0 prepare"


def test_a_store_of_another_schema_version_is_refused(tmp_path):
    SqliteStore(tmp_path / "ledger.db").close()
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(SchemaVersionError) as raised:
        SqliteStore(tmp_path / "ledger.db")
    assert f"schema version {SCHEMA_VERSION}" in str(raised.value) and "99" in str(raised.value)


def _as_schema_3(path: Path) -> None:
    """Rewrite a store as schema 3 had it: ``signer`` and ``counterparty`` columns after
    ``id``, each indexed with the key."""
    with sqlite3.connect(path) as db:
        db.executescript("""
            ALTER TABLE transactions RENAME TO v4;
            CREATE TABLE transactions (key INTEGER PRIMARY KEY, id_prefix INTEGER, id BLOB,
                signer TEXT, counterparty TEXT, valid_until INTEGER, body BLOB,
                signature BLOB, outcome INTEGER, reason TEXT, detail TEXT);
            INSERT INTO transactions SELECT key, id_prefix, id, 'bank-a', 'bank-b',
                valid_until, body, signature, outcome, reason, detail FROM v4;
            DROP TABLE v4;
            CREATE INDEX transactions_by_signer ON transactions (signer, key);
            CREATE INDEX transactions_by_counterparty ON transactions (counterparty, key)
                WHERE counterparty IS NOT NULL;
            UPDATE meta SET value = '3' WHERE key = 'schema_version';
        """)


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'index'"
                          " AND tbl_name = 'transactions' AND sql IS NOT NULL")
        return {name for (name,) in rows}


def test_a_schema_3_store_is_read_as_it_is_and_brought_to_4_when_opened_for_writing(
    tmp_path: Path,
):
    path = tmp_path / "ledger.db"
    chain, store = Chain(), SqliteStore(path)
    first = chain.issue("bank-a", 1_000)
    commit(chain, store, first)
    paid = chain.transfer("bank-a", "bank-b", 300)
    commit(chain, store, paid)
    store.close()
    _as_schema_3(path)

    reader = SqliteStore(path, read_only=True)  # an audit of a schema 3 copy
    assert reader.transaction(paid.id).transaction == paid
    reader.close()
    assert _indexes(path) == {"transactions_by_signer", "transactions_by_counterparty"}

    store = SqliteStore(path)
    assert _indexes(path) == set()
    assert store.load_state().root() == chain.state.root()
    later = chain.transfer("bank-a", "bank-c", 200)
    commit(chain, store, later)
    assert [store.transaction(t.id).height for t in (first, paid, later)] == [1, 2, 3]
    assert [r.outcome for r in store.receipts(2)] == [receipt_pb.OUTCOME_SETTLED]
    store.close()
    with sqlite3.connect(path) as db:
        version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),) and SCHEMA_VERSION == 4


def test_a_tampered_state_is_caught_at_load(tmp_path):
    chain, store = Chain(), SqliteStore(tmp_path / "ledger.db")
    commit(chain, store, chain.issue("bank-a", 5))
    store.close()
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        db.execute("UPDATE accounts SET balance = 500 WHERE id = 'bank-a'")
    with pytest.raises(StoreError) as raised:
        SqliteStore(tmp_path / "ledger.db").load_state()
    assert "state root" in str(raised.value)


def test_a_last_signed_record_kept_as_hex_text_by_an_older_store_still_loads(tmp_path):
    from ledger.store import SqliteStore

    store = SqliteStore(tmp_path / "ledger.db")
    record = b"\x00\x01 a record with every byte \xff"
    store.save_last_signed(record)
    assert store.load_last_signed() == record
    with store._conn:  # the form an older store wrote
        store._conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_signed', ?)", (record.hex(),)
        )
    assert store.load_last_signed() == record
    store.close()
