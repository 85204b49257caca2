"""Crashes during a commit: after reopening, the store holds the old block or the new one, whole.

Two ways in. SQLite's progress handler interrupts the commit after k virtual-machine
steps, for every k until the commit gets through, so the failure lands inside every
statement of the block's transaction in turn. And a real process is killed with
SIGKILL in the middle of its commit loop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ledger.errors import StoreError
from ledger.execute import InlineCheck, apply_block
from ledger.store import SqliteStore
from tests.ledger.conftest import Chain

STEP = 5  # SQLite VM instructions between interruption points


def build_chain(blocks: int) -> Chain:
    """A deterministic chain: same keys, same nonces, same blocks on every run."""
    chain = Chain()
    chain.commit(*(chain.issue(bank, 10_000) for bank in ("bank-a", "bank-b", "bank-c")))
    for height in range(2, blocks + 1):
        transfers = [
            chain.transfer(payer, payee, 1 + (height * 37 + i) % 900)
            for i, (payer, payee) in enumerate(
                [("bank-a", "bank-b"), ("bank-b", "bank-c"), ("bank-c", "bank-a")] * 4
            )
        ]
        chain.commit(*transfers, chain.transfer("bank-a", "bank-c", 50_000))
    return chain


def assert_whole(store: SqliteStore, chain: Chain) -> int:
    """The store's head is a block of ``chain``, with its state and every record of it."""
    head = store.head_height()
    state = store.load_state()
    expected = chain.blocks[head - 1]
    assert state.root() == expected.header.state_root, f"state at {head} is not block {head}'s"
    assert store.block(head).transactions == expected.transactions
    assert len(store.receipts(head)) == len(expected.transactions)
    assert store.block(head + 1) is None and store.receipts(head + 1) == []
    return head


def test_interrupted_commit_leaves_the_previous_block_whole_at_every_step(tmp_path):
    chain = build_chain(4)
    path = tmp_path / "ledger.db"
    store = SqliteStore(path)
    replay = Chain()
    for block in chain.blocks[:3]:
        replay.state = _apply_and_commit(store, replay.state, block)
    block = chain.blocks[3]
    execution = apply_block(replay.state, block, verify=InlineCheck())
    interruptions = 0
    while True:
        calls = 0

        def interrupt(limit: int = interruptions + 1) -> int:
            nonlocal calls
            calls += 1
            return 1 if calls == limit else 0

        store.connection.set_progress_handler(interrupt, STEP)
        try:
            store.commit(block, execution)
        except StoreError:
            interruptions += 1
            store.close()
            store = SqliteStore(path)
            assert assert_whole(store, chain) == 3, f"interrupted at step {interruptions}"
            continue
        break
    store.connection.set_progress_handler(None, 0)
    assert interruptions >= 50, f"the commit was cut at only {interruptions} points"
    store.close()
    assert assert_whole(SqliteStore(path), chain) == 4


def _apply_and_commit(store, state, block):
    execution = apply_block(state, block, verify=InlineCheck())
    store.commit(block, execution)
    return execution.state


CHILD = textwrap.dedent(
    """
    import sys
    from ledger.store import SqliteStore
    from tests.ledger.test_store_crash import build_chain
    from ledger.execute import AlreadyVerified, apply_block
    from ledger.state import State

    chain = build_chain(int(sys.argv[2]))
    store = SqliteStore(sys.argv[1])
    state = State.genesis(chain.genesis)
    for block in chain.blocks:
        execution = apply_block(state, block, verify=AlreadyVerified())
        store.commit(block, execution)
        state = execution.state
        print(block.height, flush=True)
    """
)


@pytest.mark.slow
def test_a_process_killed_mid_commit_loop_reopens_at_a_whole_block(tmp_path):
    blocks = 40
    chain = build_chain(blocks)
    path = tmp_path / "ledger.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(blocks)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    for line in child.stdout:
        if int(line) >= 10:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    store = SqliteStore(path)
    head = assert_whole(store, chain)
    assert head >= 10, f"the child had committed at least 10 blocks, the store says {head}"
