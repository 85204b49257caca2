"""The node loop stops, as a crash would, when carrying out a Ready fails: going on with an
engine that is ahead of the store could stall the height for good or sign twice. It carries
a Ready out in the order safety needs: persist the record, send, commit, then announce."""

from __future__ import annotations

import threading

import pytest

from ledger.consensus import Outbound, Ready
from ledger.consensus.application import ChainHead
from ledger.errors import StoreError
from services.validator.loop import Driver, Timing
from services.validator.mempool import Mempool
from tests.ledger.conftest import Chain as Signer


class DecidingEngine:
    """Stands in for the QBFT engine: decides one block as soon as it starts."""

    def __init__(self, block) -> None:  # type: ignore[no-untyped-def]
        self.block = block
        self.height = 1
        self.round = 0
        self.advanced = False

    def start(self) -> Ready:
        return Ready(committed=(self.block,))

    def advance(self) -> Ready:
        self.advanced = True
        return Ready()

    def tick(self) -> Ready:
        return Ready()


class FailingChain:
    """Its store refuses the commit, as a full disk would."""

    def head(self) -> ChainHead:
        return ChainHead(0, b"", "")

    def add_listener(self, listener) -> None:  # type: ignore[no-untyped-def]
        pass

    def commit(self, block):  # type: ignore[no-untyped-def]
        raise StoreError("expected room on the disk, got none")


class NoPeers:
    def send(self, data: bytes, to: str | None) -> None:
        raise AssertionError("nothing may be sent after a failed commit")


def test_a_commit_that_fails_stops_the_node_instead_of_carrying_on() -> None:
    signer = Signer()
    block, _ = signer.propose([signer.issue("bank-a", 1)])
    engine = DecidingEngine(block)
    driver = Driver(
        engine=engine,  # type: ignore[arg-type]
        chain=FailingChain(),  # type: ignore[arg-type]
        store=None,  # type: ignore[arg-type]
        mempool=Mempool(10),
        peers=NoPeers(),  # type: ignore[arg-type]
        timing=Timing(tick_seconds=60, block_interval_seconds=0.1),
        decode_block=lambda data: block,
    )
    driver.start()
    try:
        if not driver.failed.wait(timeout=10):
            pytest.fail("the node loop carried on after a commit failed")
    finally:
        driver.stop()
    assert not engine.advanced, "the engine must not move to the next height"


class Journal:
    """The store, the peers and the chain of a node, writing down what the loop asks of them."""

    def __init__(self) -> None:
        self.entries: list[str] = []
        self.listeners: list = []  # type: ignore[type-arg]
        self.done = threading.Event()

    # store
    def save_last_signed(self, record: bytes) -> None:
        self.entries.append(f"persist {record.decode()}")

    # peers
    def send(self, data: bytes, to: str | None) -> None:
        self.entries.append(f"send {data.decode()}")

    # chain
    def head(self) -> ChainHead:
        return ChainHead(0, b"", "")

    def add_listener(self, listener) -> None:  # type: ignore[no-untyped-def]
        self.listeners.append(listener)

    def commit(self, block):  # type: ignore[no-untyped-def]
        self.entries.append(f"commit {block.height}")
        for listener in self.listeners:
            listener(block, None)
        return None


class Record:
    def encode(self) -> bytes:
        return b"commit record"


class SealingEngine(DecidingEngine):
    """Signs its COMMIT and, with the same quorum, decides the block."""

    def start(self) -> Ready:
        return Ready(
            last_signed=Record(),  # type: ignore[arg-type]
            messages=(Outbound(b"commit"),),
            committed=(self.block,),
        )


def test_the_node_loop_persists_then_sends_then_commits_then_tells_listeners() -> None:
    signer = Signer()
    block, _ = signer.propose([signer.issue("bank-a", 1)])
    engine = SealingEngine(block)
    journal = Journal()
    driver = Driver(
        engine=engine,  # type: ignore[arg-type]
        chain=journal,  # type: ignore[arg-type]
        store=journal,  # type: ignore[arg-type]
        mempool=Mempool(10),
        peers=journal,  # type: ignore[arg-type]
        timing=Timing(tick_seconds=60, block_interval_seconds=0.1),
        decode_block=lambda data: block,
    )
    driver.add_listener(lambda b, execution: journal.entries.append(f"feed {b.height}"))
    driver.add_listener(lambda b, execution: journal.done.set())
    driver.start()
    try:
        assert journal.done.wait(timeout=10), "the block was never announced"
    finally:
        driver.stop()
    assert journal.entries == ["persist commit record", "send commit", "commit 1", "feed 1"]
    assert engine.advanced and not driver.failed.is_set()
