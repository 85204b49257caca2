"""`straits network up` as a new user meets it: the demo runs, the CLI works against the
network, Ctrl-C stops every node, and starting again resumes on the same data."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.bank.network import free_base_port

READY = "The network keeps running"


def straits(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clients.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def up(directory: Path, *extra: str) -> tuple[subprocess.Popen[str], list[str]]:
    """Starts `network up` and reads its output until the network is ready."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "clients.cli.main",
            "network",
            "up",
            "--dir",
            str(directory),
            "--log-level",
            "WARNING",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.rstrip())
        if READY in line:
            return process, lines
    process.wait(timeout=30)
    pytest.fail("network up ended before the network was ready:\n" + "\n".join(lines))


def listed(url: str, text: str, within_s: float = 30.0) -> bool:
    """Whether the page at ``url`` shows ``text`` within ``within_s`` (Prometheus scrapes
    every 5 s, so a page served at once may not list the nodes yet)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=10) as page:
            if text in page.read().decode():
                return True
        time.sleep(0.5)
    return False


def stop(process: subprocess.Popen[str]) -> list[str]:
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    return out.splitlines()


def node_processes(directory: Path) -> list[str]:
    found = subprocess.run(["pgrep", "-f", str(directory)], capture_output=True, text=True)
    return found.stdout.split()


def test_a_new_user_runs_the_demo_uses_the_cli_and_restarts_on_the_same_data(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "network"
    env = {**os.environ, "STRAITS_NETWORK": str(directory), "STRAITS_AS": "bank-a"}
    init = straits(
        "network", "init", "--dir", str(directory), "--base-port", str(free_base_port()), env=env
    )
    assert init.returncode == 0, init.stderr

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        prometheus = f"127.0.0.1:{s.getsockname()[1]}"
    process, lines = up(directory, "--demo", "--prometheus", prometheus)
    try:
        text = "\n".join(lines)
        assert "[big-ticket] QUEUED" in text and "[big-ticket] SETTLED" in text, text
        overview = f"http://{prometheus}/consoles/overview.html"
        assert overview in text, f"network up did not print the dashboards' URLs:\n{text}"
        assert listed(overview, "validator-1"), "the overview lists no node after 30 s"
        sent = straits("--json", "send", "bank-b", "123.45", "--reference", "from-the-cli", env=env)
        assert sent.returncode == 0, sent.stderr
        assert json.loads(sent.stdout)["status"] == "settled"
        before = json.loads(straits("--json", "balance", env=env).stdout)
    finally:
        stop(process)
    assert node_processes(directory) == [], "a node outlived Ctrl-C"

    process, lines = up(directory, "--no-prometheus")
    try:
        after = json.loads(straits("--json", "balance", env=env).stdout)
        assert after["balance"] == before["balance"], "the restarted network lost or changed money"
        history = straits("--json", "history", env=env)
        assert "from-the-cli" in history.stdout
    finally:
        stop(process)
