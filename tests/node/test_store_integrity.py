"""A validator checks its SQLite store before it starts, and refuses a damaged one.

Each story writes a sealed chain of three blocks to a real SQLite file, closes it,
damages the file the way a disk, an operator or an attacker could, and opens it the
way a starting validator does (``open_checked``). Reads that return a transaction
check its bytes against its id as well.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from straits.ledger.v1 import block_pb2 as block_pb

from ledger import block as blocks
from ledger.errors import StoreError
from ledger.execute import InlineCheck
from ledger.state import State
from ledger.store import SqliteStore
from services.common.config import load_config
from services.network.setup import NetworkPlan, free_base_port, init_network
from services.validator.store_check import open_checked
from tests.ledger.conftest import VALIDATORS, Chain, key


def write_chain(path: Path) -> Chain:
    """Three blocks, each sealed by all four validators, committed to the file at ``path``."""
    chain = Chain()
    store = SqliteStore(path)
    batches = [
        [chain.issue("bank-a", 1_000), chain.issue("bank-b", 500)],
        [chain.transfer("bank-a", "bank-b", 300), chain.transfer("bank-c", "bank-a", 200)],
        [chain.transfer("bank-b", "bank-c", 250)],
    ]
    for batch in batches:
        execution = chain.commit(*batch)
        block = chain.blocks[-1]
        sealed = block.with_seals(
            [blocks.make_seal(block.chain_id, block.hash, v, key(v)) for v in VALIDATORS]
        )
        store.commit(sealed, execution)
    store.close()
    return chain


def start(path: Path, chain: Chain) -> SqliteStore:
    store, _ = open_checked("validator-2", path, State.genesis(chain.genesis), InlineCheck())
    return store


def refusal(path: Path, chain: Chain) -> str:
    with pytest.raises(StoreError) as refused:
        start(path, chain)
    message = str(refused.value)
    assert "validator-2 refuses to start" in message and str(path) in message
    assert "rebuild it from the other validators" in message and "ledger.db-wal" in message
    return message


def sql(path: Path, statement: str, *params: object) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(statement, params)
    conn.close()


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, Chain]:
    path = tmp_path / "ledger.db"
    return path, write_chain(path)


def test_a_sound_store_starts_at_its_head(stored) -> None:
    path, chain = stored
    store = start(path, chain)
    assert store.head_height() == 3
    store.close()


def test_a_flipped_byte_in_the_newest_header_is_refused(stored) -> None:
    path, chain = stored
    header = bytearray(chain.blocks[-1].header_bytes)
    # The proposer's name: the header still decodes, only its hash gives it away.
    at = header.index(b"validator-")
    header[at + len("validator-")] ^= 0x01
    sql(path, "UPDATE blocks SET header = ? WHERE height = 3", bytes(header))

    assert "header bytes do not hash to its stored hash" in refusal(path, chain)


def test_random_bytes_written_over_a_page_of_the_file_are_refused(stored) -> None:
    path, chain = stored
    with sqlite3.connect(path) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'transactions'"
        ).fetchone()[0]
    conn.close()
    noise = random.Random(9).randbytes(4096)
    with path.open("r+b") as file:
        file.seek((root - 1) * page_size)
        file.write(noise)

    message = refusal(path, chain)
    assert "quick_check" in message or "malformed" in message, message


def test_a_stored_outcome_changed_in_the_newest_block_is_refused(stored) -> None:
    path, chain = stored
    sql(path, "UPDATE transactions SET outcome = 4, reason = 'insufficient_funds'"
        " WHERE key = (SELECT MAX(key) FROM transactions)")

    assert "receipts root" in refusal(path, chain)


def test_a_head_block_without_its_seals_is_refused(stored) -> None:
    path, chain = stored
    unsealed = block_pb.Block(header=chain.blocks[-1].header_bytes).SerializeToString()
    sql(path, "UPDATE blocks SET seals = ? WHERE height = 3", unsealed)

    assert "0 valid commit seals, 3 needed" in refusal(path, chain)


def test_a_balance_changed_in_the_stored_state_is_refused(stored) -> None:
    path, chain = stored
    sql(path, "UPDATE accounts SET balance = balance + 1000000 WHERE id = 'bank-a'")

    assert "state root" in refusal(path, chain)


def test_a_stored_transfer_whose_amount_was_changed_is_never_served(stored) -> None:
    path, chain = stored
    transfer = chain.blocks[1].transactions[0]
    body = bytearray(transfer.body_bytes)
    # 300 is varint ac 02; 301 (ad 02) keeps the body the same length and valid.
    body[body.index(bytes([0xAC, 0x02]))] = 0xAD
    sql(path, "UPDATE transactions SET body = ? WHERE id = ?", bytes(body), transfer.id)
    store = SqliteStore(path)

    with pytest.raises(StoreError, match="no longer hashes to its id"):
        store.transaction(transfer.id)
    with pytest.raises(StoreError, match="no longer make its transactions root"):
        store.block(2)
    assert store.transaction(chain.blocks[1].transactions[1].id) is not None
    store.close()


def test_straits_validator_on_a_file_that_is_not_a_database_exits_saying_how_to_rebuild(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "network"
    plan = NetworkPlan(banks=1, base_port=free_base_port(140))
    init_network(directory, plan, now=dt.datetime.now(dt.UTC))
    config = load_config(directory / "nodes" / "validator-2" / "node.toml")
    config.data_dir.mkdir(parents=True, exist_ok=True)
    (config.data_dir / "ledger.db").write_bytes(random.Random(4).randbytes(8192))

    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "clients.cli.main",
            "validator",
            "--config",
            str(directory / "nodes" / "validator-2" / "node.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert ran.returncode == 1, ran.stderr
    assert "validator-2 refuses to start" in ran.stderr, ran.stderr
    assert "rebuild it from the other validators" in ran.stderr, ran.stderr
