"""The liquidity-saving mechanism as every validator's metrics show it: two banks that
each owe the other more than they hold settle by offsetting, and the counters say so."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from straits.bank.v1 import bank_pb2 as bank_pb

from tests.bank.network import Network, running_network
from tests.metrics.scrape import scrape, value
from tests.metrics.test_exporter import wait_until_all_committed

COUNTERS = (
    "straits_lsm_runs_total",
    "straits_lsm_released_transfers_total",
    "straits_lsm_released_minor_units_total",
    "straits_ledger_queue_settled_transfers_total",
)


@pytest.fixture(scope="module")
def quiet_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """A network of its own: no queue left by another test can offset the first payment."""
    with running_network(tmp_path_factory.mktemp("lsm-metrics"), banks=2) as network:
        yield network


def test_a_swap_settled_by_offsetting_moves_every_validators_counters(
    quiet_network: Network,
) -> None:
    network = quiet_network
    a, b = network.bank("bank-a"), network.bank("bank-b")
    amount = a.balance().balance + b.balance().balance + 1  # more than either holds
    before = {v.config.id: scrape(v.config) for v in network.validators}

    first = a.send("bank-b", amount, reference="swap", wait=True)
    assert first.status == bank_pb.PAYMENT_STATUS_QUEUED, first
    second = b.send("bank-a", amount, reference="swap", wait=True)
    wait_until_all_committed(network, second.committed_height)

    for validator in network.validators:
        name = validator.config.id
        after = scrape(validator.config)

        def grew(metric: str, after=after, name=name) -> float:  # type: ignore[no-untyped-def]
            return value(after, metric) - value(before[name], metric)

        assert grew("straits_lsm_runs_total") >= 1, name
        # Each run is timed once, and choosing a two-transfer set takes some time, not none.
        assert grew("straits_lsm_run_seconds_count") == grew("straits_lsm_runs_total"), name
        assert grew("straits_lsm_run_seconds_sum") > 0, name
        assert grew("straits_lsm_released_transfers_total") == 2, name
        assert grew("straits_lsm_released_minor_units_total") == 2 * amount, name
        assert grew("straits_ledger_queue_settled_transfers_total") == 2, name
        assert grew("straits_ledger_queued_minor_units") == 0, f"{name}: the swap left queues"
