from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.bank.network import Network, running_network


@pytest.fixture(scope="session")
def metrics_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """4 validators, the central bank and 2 banks, each serving /metrics on its port."""
    with running_network(tmp_path_factory.mktemp("metrics-network"), banks=2) as network:
        yield network
