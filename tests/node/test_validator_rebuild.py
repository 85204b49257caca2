"""A validator with a damaged store refuses to start; rebuilt from its peers, it signs
nothing until it has passed the network's head; a tampered row is never served.

A live network in this process (4 validators, the central bank, 2 banks, real gRPC
over mutual TLS, a SQLite file per node); the damage is done with SQLite on the files.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from clients.sdk import ApiError
from ledger.consensus import LastSigned
from ledger.errors import StoreError
from ledger.store import SqliteStore
from services.validator.abstention import EVERY_HEIGHT
from services.validator.node import ValidatorNode
from tests.bank.network import Network, running_network

WAIT_S = 30.0


@pytest.fixture()
def network(tmp_path: Path) -> Iterator[Network]:
    with running_network(tmp_path, banks=2) as network:
        network.central_bank_client().issue("bank-a", 1_000_000, "bond-a")
        yield network


def pay(network: Network, count: int) -> None:
    bank = network.bank("bank-a")
    for _ in range(count):
        bank.send("bank-b", 1, wait=True)


def poll(condition: Callable[[], bool], what: str) -> None:
    # The engine's abstention has no event to wait on: poll it.
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_damaged_store_is_refused_and_the_rebuilt_validator_signs_only_past_the_head(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    pay(network, 3)
    victim = network.validators[1]
    config = victim.config
    victim.stop()
    path = config.data_dir / "ledger.db"
    with sqlite3.connect(path) as conn:
        height, header = conn.execute(
            "SELECT height, header FROM blocks ORDER BY height DESC LIMIT 1"
        ).fetchone()
        flipped = bytearray(header)
        flipped[-1] ^= 0x01  # the last byte of the receipts root
        conn.execute("UPDATE blocks SET header = ? WHERE height = ?", (bytes(flipped), height))
    conn.close()

    with pytest.raises(StoreError) as refused:
        ValidatorNode(config).start()
    message = str(refused.value)
    assert f"head block {height}" in message and "rebuild it from the other validators" in message

    aside = config.data_dir / "damaged"
    aside.mkdir()
    for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm"):
        if (config.data_dir / name).exists():
            shutil.move(config.data_dir / name, aside / name)
    signed_heights: list[int] = []
    save = SqliteStore.save_last_signed

    def spy(store: SqliteStore, record: bytes) -> None:
        # Every message a validator signs is recorded here before it leaves.
        if store is rebuilt.store:
            signed_heights.append(LastSigned.decode(record, chain_id=chain_id).signed.height)
        save(store, record)

    monkeypatch.setattr(SqliteStore, "save_last_signed", spy)
    chain_id = network.validators[0].chain.chain_id
    rebuilt = ValidatorNode(config)
    rebuilt.start()
    network.validators[1] = rebuilt
    poll(lambda: rebuilt.engine.abstain_through < EVERY_HEIGHT, "the network's head")
    through = rebuilt.engine.abstain_through
    assert through >= height + 1, f"abstains only through {through}, the head was {height}"

    pay(network, 1)
    while rebuilt.chain.head().height <= through + 3:
        pay(network, 1)
    assert signed_heights, "it never signed again"
    assert min(signed_heights) > through, f"signed at {min(signed_heights)} <= {through}"
    # Blocks up to the old head carry its seals from before the damage; none after them,
    # up to where it abstained, may.
    after_rebuild = rebuilt.store.blocks(height + 1, through - height)
    assert [b.height for b in after_rebuild] == list(range(height + 1, through + 1))
    for block in after_rebuild:
        sealers = {s.validator for s in block.seals}
        assert config.id not in sealers, f"{config.id} sealed block {block.height} <= {through}"
    head = network.validators[0].chain.head()
    assert rebuilt.feed.wait_past(head.height - 1, WAIT_S)
    assert rebuilt.store.block(head.height).hash == head.hash


def test_a_transfer_changed_in_a_running_validators_file_is_not_served(network: Network) -> None:
    paid = network.bank("bank-a").send("bank-b", 300, wait=True)
    path = network.validators[0].config.data_dir / "ledger.db"
    with sqlite3.connect(path, timeout=10) as conn:
        body = conn.execute(
            "SELECT body FROM transactions WHERE id = ?", (paid.transfer_id,)
        ).fetchone()[0]
        forged = bytearray(body)
        forged[forged.index(bytes([0xAC, 0x02]))] = 0xAD  # amount 300 -> 301, same length
        conn.execute(
            "UPDATE transactions SET body = ? WHERE id = ?", (bytes(forged), paid.transfer_id)
        )
    conn.close()

    with pytest.raises(ApiError) as refused:
        network.regulator("validator-1").transaction(paid.transfer_id)
    assert (refused.value.code, refused.value.reason) == (grpc.StatusCode.INTERNAL, "store")
    honest = network.regulator("validator-3").transaction(paid.transfer_id)
    assert honest.transaction.body == body
