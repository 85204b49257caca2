"""One real network for the audit tests, and copies of a validator's SQLite file.

The network (4 validators, the central bank, 3 banks, in this process, over gRPC with
mutual TLS) settles payments, queues one for lack of funds and releases it, and
settles a batch that lands many transfers in one block. ``pristine`` is a consistent
copy of validator-1's store taken with SQLite's backup API, as an operator would copy a
running validator's file; each test tampers with its own copy of it.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from straits.bank.v1 import bank_pb2 as bank_pb

from clients.sdk.bank import Instruction
from tests.bank.network import Network, running_network

SETTLE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class AuditedNetwork:
    network: Network
    directory: Path
    pristine: Path  # a copy of validator-1's store once every validator agreed on the head
    head: int


def _heads(network: Network) -> list[int]:
    return [network.regulator(v.config.id).head().height for v in network.validators]


def _copy_store(source: Path, destination: Path) -> None:
    reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    writer = sqlite3.connect(destination)
    try:
        reader.backup(writer)
    finally:
        writer.close()
        reader.close()


@pytest.fixture(scope="session")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditedNetwork]:
    base = tmp_path_factory.mktemp("audit")
    with running_network(base / "network", banks=3) as network:
        issuer = network.central_bank_client()
        issuer.issue("bank-a", 1_000_000, "bond-a")
        issuer.issue("bank-b", 500_000, "bond-b")
        a, c = network.bank("bank-a"), network.bank("bank-c")
        assert a.send("bank-b", 12_500, wait=True).status == bank_pb.PAYMENT_STATUS_SETTLED
        queued = c.send("bank-b", 700, wait=True)
        assert queued.status == bank_pb.PAYMENT_STATUS_QUEUED
        issuer.issue("bank-c", 1_000, "bond-c")
        a.send_many([Instruction("bank-c", 100 + i) for i in range(40)], wait=True)
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while c.payment(transfer_id=queued.transfer_id).status != bank_pb.PAYMENT_STATUS_SETTLED:
            assert time.monotonic() < deadline, "the queued payment never settled"
            time.sleep(0.05)
        # Blocks keep coming only when there is work: wait until every validator holds
        # the same head, then copy one validator's file.
        while len(set(heads := _heads(network))) > 1:
            assert time.monotonic() < deadline, f"validators never agreed on a head: {heads}"
            time.sleep(0.05)
        pristine = base / "validator-1.db"
        _copy_store(network.validators[0].config.data_dir / "ledger.db", pristine)
        yield AuditedNetwork(network, base / "network", pristine, heads[0])


@pytest.fixture
def copy(audited: AuditedNetwork, tmp_path: Path) -> Path:
    """A fresh copy of the pristine store, for one test to tamper with."""
    path = tmp_path / "ledger.db"
    shutil.copyfile(audited.pristine, path)
    return path
