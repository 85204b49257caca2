"""A network of real processes: every node started by the launcher as `straits <kind>`,
each with its own SQLite file, talking gRPC over mutual TLS on loopback ports."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from clients.sdk import BankClient, CentralBankClient, RegulatorClient, open_channel
from services.network.launcher import Launcher, NodeSpec
from services.network.setup import NetworkLayout, NetworkPlan, init_network
from tests.bank.network import free_base_port
from wire.tls import TlsFiles


@dataclass
class ProcessNetwork:
    layout: NetworkLayout
    launcher: Launcher
    nodes: list[NodeSpec]
    channels: list[grpc.Channel] = field(default_factory=list)

    def spec(self, node_id: str) -> NodeSpec:
        return next(n for n in self.nodes if n.id == node_id)

    def _channel(self, node_id: str, tls: TlsFiles) -> grpc.Channel:
        channel = open_channel(self.spec(node_id).address, tls)
        self.channels.append(channel)
        return channel

    def client_tls(self, participant: str) -> TlsFiles:
        return next(c for c in self.layout.clients if c.certificate.parent.name == participant)

    def bank(self, bank: str) -> BankClient:
        return BankClient(self._channel(bank, self.client_tls(bank)))

    def central_bank(self) -> CentralBankClient:
        return CentralBankClient(self._channel("central-bank", self.client_tls("central-bank")))

    def regulator(self, validator: str) -> RegulatorClient:
        return RegulatorClient(self._channel(validator, self.layout.regulator))

    def log_tails(self, lines: int = 15) -> str:
        """The end of every node's log, for the failure message of a test on processes."""
        out = []
        for spec in self.nodes:
            log = self.layout.directory / "logs" / f"{spec.id}.log"
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {spec.id}\n" + "\n".join(tail))
        return "\n".join(out)

    @property
    def validator_ids(self) -> list[str]:
        return [n.id for n in self.nodes if n.kind == "validator"]

    def wait_for(self, condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        """Poll ``condition`` (a real network has no event to wait on) until true or fail."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(
                    f"timed out after {timeout:.0f} s waiting for {what}\n{self.log_tails()}"
                )
            time.sleep(0.1)


@pytest.fixture
def process_network(tmp_path: Path) -> Iterator[ProcessNetwork]:
    layout = init_network(
        tmp_path / "network",
        NetworkPlan(base_port=free_base_port(), validators=4, banks=3),
        now=dt.datetime.now(dt.UTC),
    )
    launcher = Launcher(layout.directory, log_level="WARNING")
    nodes = launcher.start()
    network = ProcessNetwork(layout, launcher, nodes)
    try:
        yield network
    finally:
        for channel in network.channels:
            channel.close()
        launcher.stop()
