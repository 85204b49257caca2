"""The network benchmark counts a node's CPU with the processes it started (a validator's
signature workers), so moving work into a worker cannot make a validator look cheaper."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from clients.bench.network import children, cpu_seconds


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
    finally:
        for pid in children(parent.pid):
            os.kill(pid, 9)
        parent.kill()
        parent.wait()
