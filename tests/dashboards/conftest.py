"""A network under a short load, scraped every 2 s by Debian's Prometheus serving the
Straits console pages; one bank node is stopped so that an alert fires.

The network runs in this process (4 validators, the central bank, 3 banks, real gRPC
over mutual TLS, real SQLite files); Prometheus is the real server, started exactly as
``straits network up`` starts it, with the generated configuration and rules.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from clients.sdk.bank import Instruction
from services.network import prometheus as prometheus_config
from services.network.prometheus_server import PrometheusServer
from tests.bank.network import Network, running_network

LOAD_S = 20.0
# A scrape times out after its interval: 2 s leaves a busy machine's nodes time to answer.
SCRAPE_S = 2
STOPPED_BANK = "bank-c"  # stopped at once: StraitsNodeDown fires 30 s later
READY_S = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Watched:
    network: Network
    prometheus: PrometheusServer
    nodes: set[str]  # every node of the network, the stopped one included
    load_done: threading.Event

    def query(self, expression: str) -> list[dict]:  # type: ignore[type-arg]
        url = f"{self.prometheus.url}/api/v1/query?" + urllib.parse.urlencode(
            {"query": expression})
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = json.loads(answer.read())
        assert body["status"] == "success", body
        return body["data"]["result"]  # type: ignore[no-any-return]

    def until(self, what: str, holds: object, timeout: float = READY_S) -> None:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            last = holds()  # type: ignore[operator]
            if last is True:
                return
            time.sleep(0.5)
        pytest.fail(f"expected {what} within {timeout:.0f} s; last answer {last!r}\n"
                    f"prometheus log:\n{self.prometheus.log.read_text()[-2000:]}")


def _load(network: Network, stop: threading.Event, done: threading.Event) -> None:
    """bank-a pays bank-b small amounts in batches; bank-b asks to pay more than it will
    ever have, which waits in its queue."""
    try:
        payer, payee = network.bank("bank-a"), network.bank("bank-b")
        payee.send("bank-a", 90_000_000, reference="too big", wait=False)
        batch = 0
        while not stop.is_set():
            payer.send_many([Instruction("bank-b", 100 + i, reference=f"load {batch}.{i}")
                             for i in range(20)])
            batch += 1
            stop.wait(0.25)
    finally:
        done.set()


@pytest.fixture(scope="session")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watched]:
    folder = tmp_path_factory.mktemp("dashboards")
    with running_network(folder / "network", banks=3) as network:
        nodes = {n.id for n in network.layout.nodes}
        network.banks.pop(STOPPED_BANK).stop()
        network.central_bank_client().issue("bank-a", 50_000_000, "bond-a")
        configs = prometheus_config.configs_of(network.layout.directory)
        shutil.copyfile(prometheus_config.RULES, folder / "rules.yml")
        config = folder / "prometheus.yml"
        config.write_text(prometheus_config.render(configs, scrape_interval_s=SCRAPE_S))
        server = PrometheusServer(config, folder / "data", f"127.0.0.1:{free_port()}",
                                  folder / "prometheus.log")
        server.start()
        stop, done = threading.Event(), threading.Event()
        loader = threading.Thread(target=_load, args=(network, stop, done), daemon=True)
        loader.start()
        timer = threading.Timer(LOAD_S, stop.set)
        timer.start()
        try:
            yield Watched(network, server, nodes, done)
        finally:
            timer.cancel()
            stop.set()
            loader.join(timeout=30)
            server.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots are kept: $STRAITS_ARTIFACTS, else test-artifacts/ in the tree."""
    import os

    base = Path(os.environ.get("STRAITS_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))
    folder = base / "dashboards"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
