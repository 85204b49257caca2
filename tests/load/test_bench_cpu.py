"""The network benchmark counts a node's CPU with the processes it started (a validator's
signature workers), so moving work into a worker cannot make a validator look cheaper; it
prints the workers' part on its own too."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from clients.bench.network import children, cpu_seconds, worker_cpu_seconds


def _own_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_nodes_cpu_includes_its_workers_and_theirs():
    # A parent that starts a worker which spins; the parent itself only waits.
    spin = (
        "import time\nend = time.process_time() + 0.6\n"
        "while time.process_time() < end: pass\ntime.sleep(30)"
    )
    parent_code = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {spin!r}])\n"
        "time.sleep(30)"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            workers = children(parent.pid)
            if workers and _own_cpu(workers[0]) >= 0.5:
                break
            time.sleep(0.05)
        assert len(children(parent.pid)) == 1
        assert _own_cpu(parent.pid) < 0.3, "the parent only waits"
        assert cpu_seconds(parent.pid) >= _own_cpu(parent.pid) + 0.5
        # The workers' part on its own, as the bench prints it beside the whole.
        in_workers = worker_cpu_seconds(parent.pid)
        assert in_workers >= 0.5
        assert cpu_seconds(parent.pid) - in_workers < 0.3
    finally:
        for pid in children(parent.pid):
            os.kill(pid, 9)
        parent.kill()
        parent.wait()


def test_a_worker_that_ended_and_was_reaped_still_counts_as_the_workers():
    # A worker that spins, ends and is waited for, as a replaced signature worker is:
    # its CPU moves into the parent's reaped-children figures, and stays the workers'.
    spin = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass"
    parent_code = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {spin!r}]).wait()\n"
        "print('reaped', flush=True)\ntime.sleep(30)"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None and parent.stdout.readline() == b"reaped\n"
        assert children(parent.pid) == []
        assert worker_cpu_seconds(parent.pid) >= 0.5
        assert cpu_seconds(parent.pid) - worker_cpu_seconds(parent.pid) < 0.3
    finally:
        parent.kill()
        parent.wait()


def _chain(sizes: list[int], page: int, ignore_limit: bool):
    """Blocks 1..len(sizes) holding sizes[h-1] transactions each, answered ``page`` at a
    time; with ``ignore_limit`` the source answers whole pages whatever limit it is given."""
    from straits.validator.v1.validator_pb2 import BlockView

    asked: list[tuple[int, int]] = []

    def blocks(from_height: int, limit: int) -> list[BlockView]:
        asked.append((from_height, limit))
        count = page if ignore_limit else min(page, limit)
        return [
            BlockView(transaction_ids=[b"%d-%d" % (h, i) for i in range(sizes[h - 1])])
            for h in range(from_height, min(from_height + count, len(sizes) + 1))
        ]

    return blocks, asked


def test_payments_in_a_window_are_counted_up_to_its_last_block_only():
    from clients.bench.network import committed_between

    sizes = [h * 10 for h in range(1, 41)]  # blocks 1..40, block h holds 10 h
    for ignore_limit in (False, True):
        blocks, asked = _chain(sizes, page=7, ignore_limit=ignore_limit)
        # Blocks 11..20 only: what the window saw, never what committed after it.
        assert committed_between(blocks, 10, 20) == sum(sizes[10:20])
        assert all(limit <= 10 for _, limit in asked)
    blocks, _ = _chain(sizes, page=7, ignore_limit=False)
    assert committed_between(blocks, 0, 40) == sum(sizes)
    assert committed_between(blocks, 20, 20) == 0
    # A head past the newest block the node has: what there is.
    assert committed_between(blocks, 35, 60) == sum(sizes[35:])
