"""Signatures verified in worker processes: verdicts filed under the right height, workers
gone after the audit, whatever ends it.

The audit hands blocks to worker processes in tasks and takes the verdicts back in
height order. These stories cut the tasks small, so that a task spans several blocks
and the blocks of one height go to different workers than their neighbours, and check
that a signature broken in one block is named at that block and nowhere else, as the
threads of the auditing process name it; that ``--workers`` sets how many verify; and
that no worker outlives an audit that fails, loses a worker or is interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from straits.ledger.v1 import receipt_pb2 as receipt_pb

from clients.audit import auditor
from clients.audit.auditor import Auditor
from clients.audit.signatures import SignaturePool, WorkerError
from clients.audit.sources import SourceError, StoreSource, load_genesis
from clients.bench.audit import filled_network
from clients.cli.main import main
from ledger import codec
from ledger.keys import PrivateKey
from tests.audit.conftest import AuditedNetwork

INDEX_BITS = 20
STOP_TIMEOUT_S = 20.0


def audit(capsys: pytest.CaptureFixture[str], audited: AuditedNetwork, store: Path,
          *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["audit", "--json", "--quiet", "--store", str(store),
                 "--genesis", str(audited.directory / "genesis.json"), *argv])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def break_a_signature(db: Path) -> tuple[int, int]:
    """Flips one bit of the signature of a settled transfer in a block of several
    transactions; returns (height, index in the block)."""
    with sqlite3.connect(db) as conn:
        key, signature = conn.execute(
            "SELECT key, signature FROM transactions WHERE outcome = ? AND key >> 20 IN"
            " (SELECT key >> 20 FROM transactions GROUP BY key >> 20 HAVING count(*) >= 3)"
            " ORDER BY key DESC LIMIT 1",
            (receipt_pb.OUTCOME_SETTLED,),
        ).fetchone()
        conn.execute("UPDATE transactions SET signature = ? WHERE key = ?",
                     (bytes([signature[0] ^ 1]) + signature[1:], key))
    return key >> INDEX_BITS, key & ((1 << INDEX_BITS) - 1)


def findings(document: dict[str, Any]) -> list[tuple[int, str, str]]:
    [report] = document["reports"]
    return [(h["height"], f["check"], f["detail"])
            for h in report["findings"] for f in h["findings"]]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def small_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tasks of two transactions: blocks share tasks and spread over every worker.
    monkeypatch.setattr(auditor, "TASK_TRANSACTIONS", 2)
    monkeypatch.setattr(auditor, "TASKS_AHEAD", 1)


def test_a_broken_signature_is_named_at_its_height_by_the_workers(
    audited: AuditedNetwork, copy: Path, capsys: pytest.CaptureFixture[str], small_tasks: None
) -> None:
    height, index = break_a_signature(copy)

    code, document = audit(capsys, audited, copy, "--workers", "3")

    assert code == 1
    [(at, check, detail)] = findings(document)
    assert (at, check) == (height, "signatures")
    assert detail.startswith(f"transaction {index} (")
    assert "signature does not verify against 'bank-" in detail


def test_workers_and_threads_give_the_same_findings(
    audited: AuditedNetwork, copy: Path, capsys: pytest.CaptureFixture[str], small_tasks: None
) -> None:
    break_a_signature(copy)
    with sqlite3.connect(copy) as conn:  # and a second story: an outcome changed
        conn.execute("UPDATE transactions SET outcome = ? WHERE key = (SELECT min(key) FROM"
                     " transactions WHERE outcome = ?)",
                     (receipt_pb.OUTCOME_QUEUED, receipt_pb.OUTCOME_SETTLED))

    by_workers = audit(capsys, audited, copy, "--workers", "2")
    by_threads = audit(capsys, audited, copy, "--threads", "--workers", "2")

    assert by_workers[0] == by_threads[0] == 1
    assert findings(by_workers[1]) == findings(by_threads[1])
    assert {check for _, check, _ in findings(by_workers[1])} == {
        "signatures", "receipts", "receipts_root"}


@pytest.mark.parametrize("workers", [1, 4])
def test_the_worker_count_is_the_users(
    audited: AuditedNetwork, copy: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, workers: int,
) -> None:
    started: list[int] = []
    start = SignaturePool.start

    def counted(pool: SignaturePool) -> SignaturePool:
        start(pool)
        started.append(len(pool.pids()))
        return pool

    monkeypatch.setattr(SignaturePool, "start", counted)

    code, document = audit(capsys, audited, copy, "--workers", str(workers))

    assert code == 0, findings(document)
    assert started == [workers]


def test_no_workers_is_refused(
    audited: AuditedNetwork, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["audit", "--quiet", "--store", str(copy), "--workers", "0",
                 "--genesis", str(audited.directory / "genesis.json")])

    assert code == 2
    assert "expected --workers of 1 or more, got 0" in capsys.readouterr().err


class FailingSource(StoreSource):
    """A store whose reads fail from the second page on, as a vanished disk would."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.pages = 0

    def blocks(self, from_height: int, limit: int) -> list:  # type: ignore[type-arg]
        self.pages += 1
        if self.pages > 1:
            raise SourceError("the disk went away")
        return super().blocks(from_height, 1)


def test_workers_stop_when_the_audit_fails(
    audited: AuditedNetwork, copy: Path, small_tasks: None
) -> None:
    genesis = load_genesis(audited.directory / "genesis.json")
    source = FailingSource(copy)
    pool = SignaturePool(2, genesis.chain_id)
    with pytest.raises(SourceError, match="the disk went away"), pool:
        pids = pool.pids()
        Auditor(genesis, pool).run(source)
    source.close()

    assert len(pids) == 2 and all(gone(pid) for pid in pids)


def test_a_worker_that_dies_stops_the_audit_with_a_clear_error(
    audited: AuditedNetwork, copy: Path, small_tasks: None
) -> None:
    genesis = load_genesis(audited.directory / "genesis.json")
    source = StoreSource(copy)
    with SignaturePool(2, genesis.chain_id) as pool:
        pids = pool.pids()
        os.kill(pids[0], signal.SIGKILL)
        with pytest.raises(WorkerError, match=f"signature worker {pids[0]} stopped"):
            Auditor(genesis, pool).run(source)
    source.close()

    assert all(gone(pid) for pid in pids)


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path("/proc", str(pid), "task").glob("*/children"):
        found |= {int(child) for child in task.read_text().split()}
    return found


@pytest.mark.slow
def test_ctrl_c_stops_the_audit_and_its_workers(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    filled_network(directory, 60_000)  # long enough to be interrupted halfway
    store = directory / "nodes" / "validator-1" / "data" / "ledger.db"
    audit_process = subprocess.Popen(
        [sys.executable, "-m", "clients.cli.main", "audit", "--workers", "2",
         "--store", str(store), "--genesis", str(directory / "genesis.json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while len(workers := _children(audit_process.pid)) < 2:
            assert audit_process.poll() is None, audit_process.communicate()
            assert time.monotonic() < deadline, "the audit started no workers"
            time.sleep(0.05)
        time.sleep(0.5)  # verifying
        audit_process.send_signal(signal.SIGINT)
        _, err = audit_process.communicate(timeout=STOP_TIMEOUT_S)
    finally:
        if audit_process.poll() is None:
            audit_process.kill()

    assert audit_process.returncode == 130, err
    assert "straits: interrupted" in err
    assert all(gone(pid) for pid in workers)


def test_a_stalled_worker_holds_up_only_the_tasks_it_took() -> None:
    """Workers take tasks as they have room: while one is stopped (as a worker starved of
    CPU would be), the others answer everything but the two tasks it holds."""
    chain_id = "straits-test"
    key = PrivateKey.generate()
    prefix = codec.signing_bytes(chain_id, codec.TX, b"")
    bodies = [bytes([i]) * 40 for i in range(20)]
    signatures = [key.sign(prefix + body) for body in bodies]
    signatures[7] = bytes(64)  # one forged signature, answered 0 by whichever worker
    keys = {"bank-a": key.public_key}
    with SignaturePool(3, chain_id) as pool:
        stalled = pool.pids()[0]
        os.kill(stalled, signal.SIGSTOP)
        try:
            tasks = [pool.submit(keys, [(("bank-a",) * 2, bodies[i:i + 2], signatures[i:i + 2])])
                     for i in range(0, 20, 2)]
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while sum(t.answer is not None for t in tasks) < len(tasks) - 2:
                assert time.monotonic() < deadline, "the running workers left tasks waiting"
                time.sleep(0.01)
        finally:
            os.kill(stalled, signal.SIGCONT)
        answers = [t.result() for t in tasks]

    assert [v for answer in answers for block in answer for v in block] == [
        0 if i == 7 else 1 for i in range(20)]


def test_answers_larger_than_a_pipe_do_not_stop_the_workers() -> None:
    """A block of 100,000 transactions answers 100,000 bytes, more than a pipe holds: the
    worker writes its answer while the auditing process writes it the next task."""
    n = 100_000
    work = [(("nobody",) * n, [b"x"] * n, [bytes(64)] * n)]  # no such signer: answered 0
    answers: list[list[bytes]] = []
    with SignaturePool(1, "straits-test") as pool:
        tasks = [pool.submit({}, work) for _ in range(3)]
        waiting = threading.Thread(target=lambda: answers.extend(t.result()[0] for t in tasks),
                                   daemon=True)
        waiting.start()
        waiting.join(STOP_TIMEOUT_S)

    assert not waiting.is_alive(), "the audit's workers stopped answering"
    assert answers == [bytes(n)] * 3
