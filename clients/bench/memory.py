"""Memory of a validator holding a million payments: at start, and after running under load.

A one-validator network is created; its store is filled offline with a million signed
transfers among the banks, in sealed blocks of 2,000 committed through the validator's
own ``SqliteStore`` (each transfer valid for 200 blocks, as bank nodes sign them, so the
replay window a restarted validator rebuilds is as large as sustained load makes it).
Then every node starts as its own process, the validator resumes from that file, and a
steady load runs for a while. Resident memory (VmRSS) is read after start and after the
load, and the peak (VmHWM) at the end. Target: within 250 MB, and not growing.

``python -m clients.bench.memory``; also a section of ``make bench``.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import threading
import time
from pathlib import Path

from straits.ledger.v1 import transaction_pb2 as tx_pb

from clients.bench.network import free_base_port, memory_mb, peak_rss_mb
from clients.load.endpoints import from_network
from clients.load.runner import LoadRun, LoadSettings
from ledger import block as blocks
from ledger import genesis as genesis_file
from ledger.execute import AlreadyVerified, execute
from ledger.keys import PrivateKey
from ledger.roles import Role
from ledger.state import NORMAL, State
from ledger.store import SqliteStore
from ledger.transaction import Transaction, sign
from services.common.config import load_config
from services.network.launcher import Launcher
from services.network.setup import NetworkPlan, init_network

STORED = 1_000_000
BLOCK = 2_000
VALID_FOR = 200
# The fill already funded the banks; the load signs with their keys, straight to the validator.
LOAD = LoadSettings(via="validators", rate=300, batch=50, duration=30.0, drain=10.0)
TARGET_MB = 250
BANKS = ("bank-a", "bank-b", "bank-c")


def fill(directory: Path, count: int) -> int:
    """Writes ``count`` signed transfers into validator-1's store; returns the height."""
    config = load_config(directory / "nodes" / "validator-1" / "node.toml")
    genesis = genesis_file.load(config.genesis)
    validator_key = PrivateKey.load(config.ledger_key)
    keys = {
        p: PrivateKey.load(directory / "nodes" / p / "ledger.key") for p in (*BANKS, "central-bank")
    }
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(config.data_dir / "ledger.db")
    state = State.genesis(genesis)
    nonce = 0

    def signed(signer: str, **kind: object) -> Transaction:
        nonce_value = nonce
        body = tx_pb.TransactionBody(
            signer=signer, valid_until_height=state.height + VALID_FOR, nonce=nonce_value, **kind
        )  # type: ignore[arg-type]
        return sign(genesis.chain_id, keys[signer], body)

    def commit(transactions: list[Transaction]) -> State:
        execution = execute(state, transactions, verify=AlreadyVerified(), strict=False)
        block = blocks.build(
            chain_id=genesis.chain_id,
            height=state.height + 1,
            parent_hash=state.head_hash,
            timestamp_ms=genesis.genesis_time_ms + state.height + 1,
            proposer="validator-1",
            round=0,
            transactions=execution.transactions,
            state_root=execution.state_root,
            receipts_root=execution.receipts_root,
        )
        seal = blocks.make_seal(genesis.chain_id, block.hash, "validator-1", validator_key)
        block = block.with_seals([seal])
        store.commit(block, execution.for_block(block))
        return execution.for_block(block).state

    issues = []
    for bank in BANKS:
        nonce += 1
        issues.append(
            signed(
                "central-bank", issue=tx_pb.Issue(bank=bank, amount=10**15, collateral_ref="bench")
            )
        )
    state = commit(issues)
    written = 0
    while written < count:
        transfers = []
        for i in range(min(BLOCK, count - written)):
            nonce += 1
            payer, payee = BANKS[i % 3], BANKS[(i + 1) % 3]
            transfers.append(
                signed(
                    payer,
                    transfer=tx_pb.Transfer(payee=payee, amount=1 + nonce % 997, priority=NORMAL),
                )
            )
        state = commit(transfers)
        written += len(transfers)
    store.close()
    return state.height


def run() -> dict:
    with tempfile.TemporaryDirectory(prefix="straits-memory-") as tmp:
        layout = init_network(
            Path(tmp) / "net",
            NetworkPlan(validators=1, banks=len(BANKS), base_port=free_base_port()),
            now=dt.datetime.now(dt.UTC),
        )
        started = time.perf_counter()
        height = fill(layout.directory, STORED)
        fill_seconds = time.perf_counter() - started
        launcher = Launcher(layout.directory, log_level="WARNING")
        launcher.start()
        try:
            pid = next(
                r.process.pid for r in launcher.running.values() if r.spec.kind is Role.VALIDATOR
            )
            at_start = memory_mb(pid, "VmRSS")
            with open(os.devnull, "w") as quiet:
                LoadRun(LOAD, from_network(layout.directory), out=quiet).run(threading.Event())
            after_load = memory_mb(pid, "VmRSS")
            peak = peak_rss_mb(pid)
        finally:
            launcher.stop()
    rows = [
        {
            "metric": f"validator with {STORED:,} payments stored: RSS after start",
            "value": at_start,
            "unit": "MB",
            "target": f"<= {TARGET_MB}",
        },
        {
            "metric": f"same, after {LOAD.duration:.0f} s at {LOAD.rate:.0f}/s",
            "value": after_load,
            "unit": "MB",
            "target": "not growing",
        },
        {"metric": "same, peak RSS", "value": peak, "unit": "MB", "target": f"<= {TARGET_MB}"},
    ]
    return {
        "rows": rows,
        "stored": STORED,
        "height": height,
        "fill_seconds": fill_seconds,
        "rss_after_start_mb": at_start,
        "rss_after_load_mb": after_load,
        "peak_rss_mb": peak,
    }


if __name__ == "__main__":
    from clients.bench.core import print_table

    print_table({"memory": run()})
