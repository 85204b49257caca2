"""Runs a whole local network as separate processes, one per node, and stops it cleanly.

``Launcher(directory)`` reads the network index (``network.json``, written by
``straits network init``); ``start()`` starts the validators first, then the
central bank and the banks, each as ``straits <kind> --config <node.toml>`` with
its log in ``<directory>/logs/<id>.log``, and waits until every node answers the
standard gRPC health check over mutual TLS; ``stop()`` sends SIGTERM to all and
waits (SIGKILL after a grace period). Restarted on the same directory, every node
resumes from its own SQLite file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ledger.roles import Role
from services.common.errors import ConfigError, UnavailableError
from wire.tls import TlsFiles, secure_channel

# The order nodes start in: bank and central-bank nodes follow validators.
_ORDER = {Role.VALIDATOR: 0, Role.CENTRAL_BANK: 1, Role.BANK: 2}
_COMMAND = {Role.VALIDATOR: "validator", Role.CENTRAL_BANK: "central-bank", Role.BANK: "bank"}


@dataclass(frozen=True)
class NodeSpec:
    id: str
    kind: Role
    address: str
    config: Path


@dataclass
class Running:
    spec: NodeSpec
    process: subprocess.Popen[bytes]
    log: Path


def read_index(directory: Path) -> tuple[list[NodeSpec], TlsFiles]:
    """The nodes of a network and the credentials the launcher checks health with."""
    index_path = directory / "network.json"
    if not index_path.is_file():
        raise ConfigError(
            f"expected a network in {directory} (run straits network init)", field="dir"
        )
    index = json.loads(index_path.read_text())
    nodes = [
        NodeSpec(n["id"], Role(n["kind"]), n["address"], directory / n["config"])
        for n in index["nodes"]
    ]
    regulator = index["regulator"]
    tls = TlsFiles(
        directory / index["ca"], directory / regulator["certificate"], directory / regulator["key"]
    )
    return sorted(nodes, key=lambda n: (_ORDER[n.kind], n.id)), tls


def healthy(address: str, tls: TlsFiles, timeout: float = 1.0) -> bool:
    with secure_channel(address, tls) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError:
            return False
        return response.status == health_pb2.HealthCheckResponse.SERVING


class Launcher:
    def __init__(
        self, directory: Path, *, log_level: str = "INFO", python: str = sys.executable
    ) -> None:
        self.directory = Path(directory).absolute()
        self.log_level = log_level
        self.python = python
        self.running: dict[str, Running] = {}

    def start(self, timeout: float = 60.0) -> list[NodeSpec]:
        nodes, tls = read_index(self.directory)
        logs = self.directory / "logs"
        logs.mkdir(exist_ok=True)
        for spec in nodes:
            self.start_node(spec)
        deadline = time.monotonic() + timeout
        for spec in nodes:
            while not healthy(spec.address, tls):
                process, log = self.running[spec.id].process, self.running[spec.id].log
                if process.poll() is not None:
                    self.stop()  # forgets the running nodes: the log path was read before
                    raise UnavailableError(
                        f"node {spec.id} exited with status {process.returncode}; see {log}"
                    )
                if time.monotonic() > deadline:
                    self.stop()
                    raise UnavailableError(f"node {spec.id} not healthy after {timeout:.0f} s")
                time.sleep(0.1)
        return nodes

    def start_node(self, spec: NodeSpec) -> Running:
        log = self.directory / "logs" / f"{spec.id}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [
                    self.python,
                    "-m",
                    "clients.cli.main",
                    _COMMAND[spec.kind],
                    "--config",
                    str(spec.config),
                    "--log-level",
                    self.log_level,
                    "--stop-with-parent",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                # Ctrl-C in the terminal goes to the launcher, which stops nodes in order;
                # if the launcher itself dies, --stop-with-parent has the kernel stop them.
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.running[spec.id] = Running(spec, process, log)
        return self.running[spec.id]

    def exited(self) -> list[Running]:
        return [r for r in self.running.values() if r.process.poll() is not None]

    def stop(self, grace: float = 10.0, *, kinds: Collection[Role] | None = None) -> None:
        """Stops the nodes in the reverse of their start order, kind by kind: bank and
        central-bank nodes first (nothing is left submitting), validators last.
        ``kinds`` stops only the nodes of those kinds; the others keep running."""
        deadline = time.monotonic() + grace
        chosen = [r for r in self.running.values() if kinds is None or r.spec.kind in kinds]
        for order in sorted({_ORDER[r.spec.kind] for r in chosen}, reverse=True):
            group = [r for r in chosen if _ORDER[r.spec.kind] == order]
            for running in group:
                if running.process.poll() is None:
                    running.process.send_signal(signal.SIGTERM)
            for running in group:
                try:
                    running.process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    running.process.kill()
                    running.process.wait()
        for running in chosen:
            del self.running[running.spec.id]
