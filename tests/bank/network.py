"""A whole network in this process: 4 validators, the central-bank node and bank nodes,
each with its own gRPC server on a loopback port, mutual TLS, and SQLite files.

Clients reach the nodes exactly as a bank's or the central bank's software would:
through the SDK over a TLS channel with a client certificate from ``network init``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from clients.sdk import BankClient, CentralBankClient, RegulatorClient, open_channel
from ledger.roles import Role
from services.common.config import load_config
from services.network import setup as network_setup
from services.network.setup import NetworkLayout, NetworkPlan, init_network
from services.participant.bank.node import BankNode
from services.participant.central_bank.node import CentralBankNode
from services.validator.node import ValidatorNode
from wire.tls import TlsFiles

# Nodes of a 4-validator network with `banks` banks, plus their metrics ports.
PORT_SPAN = 140


def free_base_port(span: int = PORT_SPAN) -> int:
    return network_setup.free_base_port(span)


@dataclass
class Network:
    layout: NetworkLayout
    validators: list[ValidatorNode] = field(default_factory=list)
    central_bank: CentralBankNode | None = None
    banks: dict[str, BankNode] = field(default_factory=dict)
    channels: list[grpc.Channel] = field(default_factory=list)

    def client_tls(self, participant: str) -> TlsFiles:
        return next(c for c in self.layout.clients if c.certificate.parent.name == participant)

    def address(self, node_id: str) -> str:
        return next(n.address for n in self.layout.nodes if n.id == node_id)

    def channel(self, node_id: str, tls: TlsFiles) -> grpc.Channel:
        channel = open_channel(self.address(node_id), tls)
        self.channels.append(channel)
        return channel

    def bank(self, bank: str) -> BankClient:
        """A client of ``bank`` talking to its own node."""
        return BankClient(self.channel(bank, self.client_tls(bank)))

    def central_bank_client(self) -> CentralBankClient:
        return CentralBankClient(self.channel("central-bank", self.client_tls("central-bank")))

    def regulator(self, validator: str = "validator-1") -> RegulatorClient:
        return RegulatorClient(self.channel(validator, self.layout.regulator))

    def stop(self) -> None:
        for channel in self.channels:
            channel.close()
        for node in [
            *self.banks.values(),
            *([self.central_bank] if self.central_bank else []),
            *self.validators,
        ]:
            node.stop()


@contextmanager
def running_network(directory: Path, banks: int = 5) -> Iterator[Network]:
    layout = init_network(
        directory, NetworkPlan(banks=banks, base_port=free_base_port()), now=dt.datetime.now(dt.UTC)
    )
    network = Network(layout)
    try:
        for entry in layout.nodes:
            config = load_config(entry.config)
            if entry.kind is Role.VALIDATOR:
                node = ValidatorNode(config)
                node.start()
                network.validators.append(node)
        for entry in layout.nodes:
            config = load_config(entry.config)
            if entry.kind is Role.CENTRAL_BANK:
                network.central_bank = CentralBankNode(config)
                network.central_bank.start()
            elif entry.kind is Role.BANK:
                network.banks[entry.id] = BankNode(config)
                network.banks[entry.id].start()
        yield network
    finally:
        network.stop()
