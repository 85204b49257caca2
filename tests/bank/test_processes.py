"""Every node its own process (`straits validator|central-bank|bank --config`), over loopback
with mutual TLS: issue, pay, a payment that queues and settles when funds arrive,
watchers on both sides, replicas that agree and balances that add up."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from straits.bank.v1 import bank_pb2 as pb
from straits.ledger.v1 import block_pb2

from clients.sdk import BankClient, CentralBankClient, RegulatorClient, open_channel
from services.network.setup import NetworkLayout, NetworkPlan, init_network
from tests.bank.network import free_base_port
from wire.tls import TlsFiles

pytestmark = pytest.mark.slow

COMMAND = {"validator": "validator", "central_bank": "central-bank", "bank": "bank"}
START_TIMEOUT_S = 30


def client(layout: NetworkLayout, participant: str) -> tuple[str, TlsFiles]:
    address = next(n.address for n in layout.nodes if n.id == participant)
    tls = next(c for c in layout.clients if c.certificate.parent.name == participant)
    return address, tls


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetworkLayout]:
    directory = tmp_path_factory.mktemp("processes")
    layout = init_network(
        directory, NetworkPlan(banks=2, base_port=free_base_port()), now=dt.datetime.now(dt.UTC)
    )
    running = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        for node in layout.nodes:
            log = (directory / f"{node.id}.log").open("wb")
            running.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "clients.cli.main",
                        COMMAND[node.kind.value],
                        "--config",
                        str(node.config),
                        "--log-level",
                        "WARNING",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            )
        for node in layout.nodes:
            channel = open_channel(node.address, layout.regulator)
            health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=START_TIMEOUT_S, wait_for_ready=True
            )
            channel.close()
        yield layout
    finally:
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def test_payments_between_node_processes_settle_and_replicas_agree(
    processes: NetworkLayout,
) -> None:
    layout = processes
    central_bank = CentralBankClient(open_channel(*client(layout, "central-bank")))
    bank_a = BankClient(open_channel(*client(layout, "bank-a")))
    bank_b = BankClient(open_channel(*client(layout, "bank-b")))
    central_bank.issue("bank-a", 10_000, "bond-a")

    queued = bank_b.send("bank-a", 3_000, reference="waits for funds", wait=True)
    assert queued.status == pb.PAYMENT_STATUS_QUEUED, queued
    covering = bank_a.send("bank-b", 5_000, reference="covers it", wait=True)
    assert covering.status == pb.PAYMENT_STATUS_SETTLED, covering

    outgoing = bank_b.watch(
        from_height=queued.committed_height,
        direction=pb.DIRECTION_OUTGOING,
        timeout=START_TIMEOUT_S,
    )
    assert [next(outgoing).payment.status for _ in range(2)] == [
        pb.PAYMENT_STATUS_QUEUED,
        pb.PAYMENT_STATUS_SETTLED,
    ]
    incoming = bank_a.watch(
        from_height=queued.committed_height,
        direction=pb.DIRECTION_INCOMING,
        timeout=START_TIMEOUT_S,
    )
    assert [next(incoming).payment.transfer_id for _ in range(2)] == [queued.transfer_id] * 2

    assert (bank_a.balance().balance, bank_b.balance().balance) == (8_000, 2_000)
    supply = central_bank.total_supply()
    assert supply.total_supply == 10_000 == sum(a.balance for a in central_bank.positions())

    validators = [
        RegulatorClient(open_channel(n.address, layout.regulator))
        for n in layout.nodes
        if n.kind.value == "validator"
    ]
    height = min(v.head().height for v in validators)
    roots = {
        block_pb2.BlockHeader.FromString(v.blocks(height, 1)[0].block.header).state_root
        for v in validators
    }
    assert len(roots) == 1, f"validators disagree on the state at height {height}"
