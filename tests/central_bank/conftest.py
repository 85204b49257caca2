from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.bank.network import Network, running_network


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with running_network(tmp_path_factory.mktemp("central-bank-network"), banks=3) as network:
        yield network
