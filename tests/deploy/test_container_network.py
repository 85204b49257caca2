"""The compose network run by podman from the image: payments settle through a bank
node, keep settling with a validator container killed, and the restarted validator
catches up to the state root every other validator holds.

Keys come from the real ceremony (deploy/ceremony.sh); the compose file is the one in
deploy/compose, read by podman-compose. Every container, network and volume the test
makes carries its own project name and is removed at the end, also on failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import grpc
import jsonschema
import pytest
import yaml
from straits.bank.v1 import bank_pb2 as pb

from clients.sdk import ApiError, BankClient, CentralBankClient, RegulatorClient, open_channel
from services.network.setup import free_base_port
from wire.tls import TlsFiles

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "deploy" / "compose" / "compose.yaml"
BIN = Path(sys.executable).parent
VALIDATORS = [f"validator-{i}" for i in range(1, 5)]
NODES = [*VALIDATORS, "central-bank", "bank-a", "bank-b"]
PORT_VARIABLES = [n.upper().replace("-", "_") + "_PORT" for n in NODES] + ["PROMETHEUS_PORT"]
OPENING = 1_000_000


@dataclass
class ComposeNetwork:
    project: str
    hosts: Path
    ports: dict[str, int]
    env: dict[str, str]
    channels: list[grpc.Channel]

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "podman-compose"), "-f", str(COMPOSE_FILE), *args],
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    def podman(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True,
                              timeout=120)

    def _channel(self, node: str, host: str) -> grpc.Channel:
        folder = self.hosts / host
        channel = open_channel(f"127.0.0.1:{self.ports[node]}",
                               TlsFiles(folder / "ca.crt", folder / "tls.crt", folder / "tls.key"))
        self.channels.append(channel)
        return channel

    def bank(self, bank: str) -> BankClient:
        return BankClient(self._channel(bank, f"{bank}-client"))

    def issuer(self) -> CentralBankClient:
        return CentralBankClient(self._channel("central-bank", "central-bank-client"))

    def regulator(self, validator: str) -> RegulatorClient:
        return RegulatorClient(self._channel(validator, "regulator"), timeout=5)

    def logs(self) -> str:
        out = []
        for node in NODES:
            tail = self.podman("logs", "--tail", "15", self.container(node))
            out.append(f"--- {node}\n{tail.stdout}{tail.stderr}")
        return "\n".join(out)

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not _holds(condition):
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{self.logs()}")
            time.sleep(0.5)


def _holds(condition: Callable[[], bool]) -> bool:
    try:
        return condition()
    except ApiError:  # a node still starting refuses the connection
        return False


def _leftovers(env: dict[str, str], project: str) -> list[str]:
    found = []
    label = f"label=io.podman.compose.project={project}"
    for kind, command in (("container", ["ps", "-a", "--filter", label, "--format",
                                         "{{.Names}}"]),
                          ("volume", ["volume", "ls", "--filter", label, "--format",
                                      "{{.Name}}"]),
                          ("network", ["network", "ls", "--filter", label, "--format",
                                       "{{.Name}}"])):
        listed = subprocess.run(["podman", *command], env=env, capture_output=True, text=True)
        found += [f"{kind} {name}" for name in listed.stdout.split()]
    return found


def _remove_everything(env: dict[str, str], project: str) -> None:
    """What `compose down -v` left, by the project's label: nothing of it may stay."""
    label = f"label=io.podman.compose.project={project}"
    for command in (["rm", "-f", "-t", "0", "--filter", label],
                    ["volume", "prune", "-f", "--filter", label],
                    ["network", "prune", "-f", "--filter", label]):
        subprocess.run(["podman", *command], env=env, capture_output=True)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeNetwork]:
    if shutil.which("podman") is None:
        pytest.fail("podman is missing: run `make test-deploy`, which installs it")
    work = tmp_path_factory.mktemp("compose")
    hosts = work / "hosts"
    subprocess.run(["sh", str(ROOT / "deploy" / "ceremony.sh"), str(hosts)], check=True,
                   capture_output=True, env={**os.environ, "STRAITS": str(BIN / "straits")})
    # Away from the ports other suites count up from 21000, so that a concurrent run
    # cannot take one between this check and podman's bind.
    base = free_base_port(len(PORT_VARIABLES), first=40000 + os.getpid() % 500 * 37)
    ports = dict(zip([*NODES, "prometheus"], range(base, base + len(PORT_VARIABLES)),
                     strict=True))
    project = f"straits-test-{os.getpid()}"
    env = {**os.environ, "STRAITS_HOSTS": str(hosts), "COMPOSE_PROJECT_NAME": project,
           **{v: str(p) for v, p in zip(PORT_VARIABLES, ports.values(), strict=True)}}
    network = ComposeNetwork(project, hosts, ports, env, [])
    try:
        # podman-compose reads the file as it will run it: check that against the schema.
        config = network.compose("config")
        assert config.returncode == 0, config.stderr
        vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
        jsonschema.validate(yaml.safe_load(config.stdout),
                            json.loads(vendor.joinpath("compose-spec.json").read_text()))
        up = network.compose("up", "-d")
        assert up.returncode == 0, up.stdout + up.stderr
        for node in NODES:  # the image's own HEALTHCHECK, run by podman
            network.wait_for(
                lambda n=node: network.podman("healthcheck", "run",
                                              network.container(n)).returncode == 0,
                120, f"{node} to be healthy")
        yield network
    finally:
        for channel in network.channels:
            channel.close()
        network.compose("down", "-v", "-t", "10")
        if _leftovers(env, project):
            _remove_everything(env, project)
        left = _leftovers(env, project)
        assert not left, f"the test left {left}"


def _pay(bank: BankClient, payee: str, count: int, amount: int) -> list[bytes]:
    ids = []
    for i in range(count):
        payment = bank.send(payee, amount, reference=f"deploy-{i}", wait=True)
        assert payment.status == pb.PAYMENT_STATUS_SETTLED, payment
        ids.append(payment.transfer_id)
    return ids


def _heads(network: ComposeNetwork, validators: list[str]) -> dict[str, tuple[int, bytes]]:
    heads = {}
    for v in validators:
        head = network.regulator(v).head()
        heads[v] = (head.height, head.state_root)
    return heads


def test_payments_settle_with_a_validator_container_killed_and_it_catches_up(
        network: ComposeNetwork) -> None:
    issuer = network.issuer()
    for bank in ("bank-a", "bank-b"):
        issuer.issue(bank, OPENING, f"bond-{bank}")
    bank_a, bank_b = network.bank("bank-a"), network.bank("bank-b")
    settled = _pay(bank_a, "bank-b", 10, 1_000) + _pay(bank_b, "bank-a", 5, 700)

    killed = network.podman("kill", "--signal", "KILL", network.container("validator-3"))
    assert killed.returncode == 0, killed.stderr
    state = network.podman("inspect", "--format", "{{.State.Running}}",
                           network.container("validator-3"))
    assert state.stdout.strip() == "false", "validator-3 should be down"
    settled += _pay(bank_a, "bank-b", 10, 2_000)
    live = [v for v in VALIDATORS if v != "validator-3"]
    height_without = max(h for h, _ in _heads(network, live).values())

    started = network.podman("start", network.container("validator-3"))
    assert started.returncode == 0, started.stderr
    network.wait_for(lambda: _heads(network, ["validator-3"])["validator-3"][0]
                     >= height_without, 120, "the restarted validator-3 to catch up")
    settled += _pay(bank_b, "bank-a", 5, 300)  # and it takes part again

    network.wait_for(lambda: len(set(_heads(network, VALIDATORS).values())) == 1, 60,
                     "all four validators at one height with one state root")
    for transfer_id in settled:
        commits = {v: network.regulator(v).transaction(transfer_id).commit for v in VALIDATORS}
        assert len({(c.height, c.receipt.outcome) for c in commits.values()}) == 1, commits
    balances = {b: network.bank(b).balance().balance for b in ("bank-a", "bank-b")}
    assert balances == {"bank-a": OPENING - 10_000 + 3_500 - 20_000 + 1_500,
                        "bank-b": OPENING + 10_000 - 3_500 + 20_000 - 1_500}


def test_prometheus_serves_the_dashboards_for_the_compose_network(
        network: ComposeNetwork) -> None:
    overview = f"http://127.0.0.1:{network.ports['prometheus']}/consoles/overview.html"
    deadline = time.monotonic() + 60  # Prometheus scrapes every 5 s
    shown = ""
    while time.monotonic() < deadline and "validator-4" not in shown:
        try:
            with urllib.request.urlopen(overview, timeout=10) as page:
                shown = page.read().decode()
        except OSError:
            shown = ""
        time.sleep(1)
    assert "validator-4" in shown, f"the overview page lists no validators: {shown[:500]}"
