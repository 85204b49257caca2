from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from straits.bank.v1 import bank_pb2

from clients.sdk import NetworkIndex, Regulator
from tests.bank.network import Network, running_network


@dataclass(frozen=True)
class Story:
    """What happened on the network before the regulator looks: bank-a was funded and
    paid bank-b; bank-b, with nothing, sent more than it got, which waits in its queue."""

    network: Network
    settled: bank_pb2.Payment
    queued: bank_pb2.Payment
    issued: int


@pytest.fixture(scope="session")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    with running_network(tmp_path_factory.mktemp("regulator-network"), banks=2) as network:
        issued = 100_000
        network.central_bank_client().issue("bank-a", issued, "bond-a")
        queued = network.bank("bank-b").send("bank-a", 5_000, reference="too big", wait=True)
        settled = network.bank("bank-a").send("bank-b", 2_500, reference="invoice 7", wait=True)
        yield Story(network, settled, queued, issued)


@pytest.fixture
def regulator(story: Story) -> Iterator[Regulator]:
    with Regulator(NetworkIndex.load(story.network.layout.directory)) as seat:
        yield seat
