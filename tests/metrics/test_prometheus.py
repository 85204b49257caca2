"""A real Prometheus server (Debian's package) scrapes a running network every second.

Prometheus is required, not optional: ``make test`` installs it (``make prometheus``),
and a missing server fails here with the command that installs it.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.network import prometheus as prometheus_config
from tests.bank.network import Network

RULES_TEST = prometheus_config.RULES.with_name("rules_test.yml")
READY_S = 45


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"expected the Prometheus server's `{name}` on PATH, found none: "
            "run `make prometheus` (apt-get install prometheus) or `make test`"
        )
    return path


def promtool(*args: str | Path) -> str:
    done = subprocess.run(
        [tool("promtool"), *map(str, args)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, (
        f"promtool {' '.join(map(str, args))} failed:\n{done.stdout}{done.stderr}"
    )
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    def __init__(self, address: str, log: Path) -> None:
        self.address = address
        self.log = log

    def api(self, path: str, **params: str) -> dict:  # type: ignore[type-arg]
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"http://{self.address}{path}?{query}", timeout=5) as answer:
            body = json.loads(answer.read())
        assert body["status"] == "success", body
        return body["data"]  # type: ignore[no-any-return]

    def query(self, expression: str) -> dict[str, float]:
        """The instant vector of ``expression`` by node."""
        result = self.api("/api/v1/query", query=expression)["result"]
        return {r["metric"].get("node", ""): float(r["value"][1]) for r in result}

    def until(self, what: str, holds: object) -> None:
        """Asks ``holds()`` again (Prometheus scrapes every second) until it is true."""
        deadline = time.monotonic() + READY_S
        last: object = None
        while time.monotonic() < deadline:
            try:
                last = holds()  # type: ignore[operator]
            except OSError as error:  # the server is still starting
                last = error
            if last is True:
                return
            time.sleep(0.25)
        pytest.fail(
            f"expected {what} within {READY_S} s; last answer {last!r}\n"
            f"prometheus log:\n{self.log.read_text()[-3000:]}"
        )


@pytest.fixture(scope="module")
def prometheus(
    metrics_network: Network, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    server = tool("prometheus")
    folder = tmp_path_factory.mktemp("prometheus")
    configs = [n.config for n in metrics_network.validators]
    assert metrics_network.central_bank is not None
    configs += [
        metrics_network.central_bank.config,
        *(b.config for b in metrics_network.banks.values()),
    ]
    shutil.copyfile(prometheus_config.RULES, folder / "rules.yml")
    config = folder / "prometheus.yml"
    config.write_text(prometheus_config.render(configs, scrape_interval_s=1))
    promtool("check", "config", config)
    address = f"127.0.0.1:{free_port()}"
    log = folder / "prometheus.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                server,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address={address}",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Prometheus(address, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_prometheus_scrapes_every_node_and_sees_each_validator_deciding(
    metrics_network: Network, prometheus: Prometheus
) -> None:
    network = metrics_network
    assert network.central_bank is not None
    nodes = {
        n.config.id for n in [*network.validators, network.central_bank, *network.banks.values()]
    }
    validators = {v.config.id for v in network.validators}

    prometheus.until(
        "every node's target up",
        lambda: (
            set(prometheus.query('up{job="straits"} == 1')) == nodes
            or prometheus.query('up{job="straits"}')
        ),
    )
    prometheus.until(
        "straits_consensus_height > 0 for every validator",
        lambda: (
            set(prometheus.query("straits_consensus_height > 0")) == validators
            or prometheus.query("straits_consensus_height")
        ),
    )
    # An idle chain still commits a heartbeat block every 5 s: every validator's head moves,
    # and the recording rule sees the highest one.
    prometheus.until(
        "straits_ledger_height > 0 for every validator",
        lambda: (
            set(prometheus.query("straits_ledger_height > 0")) == validators
            or prometheus.query("straits_ledger_height")
        ),
    )
    prometheus.until(
        "the recording rule straits:ledger_height:max above 0",
        lambda: (
            prometheus.query("straits:ledger_height:max > 0") != {}
            or prometheus.query("straits:ledger_height:max")
        ),
    )
    followed = prometheus.query("straits_participant_followed_height")
    assert set(followed) == nodes - validators, followed
    memory = prometheus.query("straits_process_peak_resident_memory_bytes")
    assert set(memory) == nodes and min(memory.values()) > 0, memory


def test_prometheus_loads_the_alert_and_recording_rules(prometheus: Prometheus) -> None:
    groups = {g["name"]: g for g in prometheus.api("/api/v1/rules")["groups"]}
    assert set(groups) == {"straits-recording", "straits-alerts"}, groups
    alerts = {r["name"] for r in groups["straits-alerts"]["rules"]}
    assert {
        "StraitsNodeDown",
        "StraitsValidatorNotCommitting",
        "StraitsRoundChangesRising",
        "StraitsMempoolNearFull",
    } <= alerts, alerts

    def all_healthy() -> bool | list[tuple[str, str, str]]:
        rules = [r for g in prometheus.api("/api/v1/rules")["groups"] for r in g["rules"]]
        unhealthy = [
            (r["name"], r["health"], r.get("lastError", "")) for r in rules if r["health"] != "ok"
        ]
        return unhealthy if unhealthy else True

    prometheus.until("every rule evaluated without error", all_healthy)


def test_the_alert_rules_are_valid_and_fire_on_their_stories() -> None:
    assert "SUCCESS" in promtool("check", "rules", prometheus_config.RULES)
    promtool("test", "rules", RULES_TEST)


def test_network_init_writes_a_configuration_prometheus_accepts(
    metrics_network: Network,
) -> None:
    directory = metrics_network.layout.directory
    written = directory / "prometheus" / "prometheus.yml"
    assert "SUCCESS" in promtool("check", "config", written)
    configs = prometheus_config.configs_of(directory)
    assert [c.id for c in configs] == [n.id for n in metrics_network.layout.nodes]
    assert written.read_text() == prometheus_config.render(configs), (
        f"{written} differs from the configuration rendered from network.json"
    )
