"""Every node of an in-process network serves its own metrics, read from its live state.

Nodes share this process, so each has its own registry and port: a validator's
scrape must show that validator's numbers, never a neighbour's.
"""

from __future__ import annotations

from straits.bank.v1 import bank_pb2 as bank_pb
from straits.ledger.v1 import receipt_pb2 as receipt_pb

from services.common.config import NodeConfig
from tests.bank.network import Network
from tests.metrics.scrape import Sample, scrape, value

WAIT_S = 20


def node_configs(network: Network) -> list[NodeConfig]:
    assert network.central_bank is not None
    return [n.config for n in [*network.validators, network.central_bank, *network.banks.values()]]


def wait_until_all_committed(network: Network, height: int) -> None:
    """Every validator has committed ``height`` and a block after it: the metrics observer
    runs after the commit feed, so by the next block it has counted ``height``."""
    for validator in network.validators:
        assert validator.feed.wait_past(height, WAIT_S), (
            f"{validator.config.id} committed no block after {height} within {WAIT_S} s"
        )


def test_every_node_labels_its_series_with_its_own_id_and_kind(metrics_network: Network) -> None:
    for config in node_configs(metrics_network):
        samples = scrape(config)
        straits = [s for s in samples if s.name.startswith("straits_")]
        assert straits, f"{config.id} exported no straits_ series"
        strangers = [
            s
            for s in samples
            if (s.labels.get("node"), s.labels.get("kind")) != (config.id, config.kind.value)
        ]
        assert not strangers, f"{config.id} exported series of another node: {strangers[:3]}"
        rss = value(samples, "process_resident_memory_bytes")
        peak = value(samples, "straits_process_peak_resident_memory_bytes")
        assert peak >= rss > 0, f"{config.id}: peak RSS {peak} below current RSS {rss}"
        # Every node keeps its SQLite file open, whose caches are part of its memory.
        database = value(samples, "straits_process_sqlite_memory_bytes")
        assert 0 < database < rss, f"{config.id}: SQLite holds {database} of {rss} bytes"
        assert value(samples, "process_cpu_seconds_total") > 0, f"{config.id} used no CPU"


def test_a_validator_reports_its_peers_by_id(metrics_network: Network) -> None:
    validator = metrics_network.validators[0]
    samples = scrape(validator.config)
    reported = {
        s.labels["peer"] for s in samples if s.name == "straits_peer_messages_delivered_total"
    }
    assert reported == {p.id for p in validator.config.peers}, reported
    assert value(samples, "straits_mempool_capacity_transactions") == (
        validator.settings.mempool_capacity
    )


def committed_snapshot(network: Network) -> dict[str, list[Sample]]:
    return {v.config.id: scrape(v.config) for v in network.validators}


def test_an_issue_and_a_payment_move_every_validators_height_counters_and_supply(
    metrics_network: Network,
) -> None:
    network = metrics_network
    assert network.central_bank is not None
    before = committed_snapshot(network)
    payer_before = scrape(network.banks["bank-a"].config)
    payee_before = scrape(network.banks["bank-b"].config)

    issued = network.central_bank_client().issue("bank-a", 70_000, "bond-metrics")
    assert issued.receipt.outcome == receipt_pb.OUTCOME_APPLIED, issued
    payment = network.bank("bank-a").send("bank-b", 2_500, reference="metrics", wait=True)
    assert payment.status == bank_pb.PAYMENT_STATUS_SETTLED, payment
    wait_until_all_committed(network, payment.committed_height)

    for validator in network.validators:
        name = validator.config.id
        old, new = before[name], scrape(validator.config)
        moved = value(new, "straits_ledger_committed_transactions_total") - value(
            old, "straits_ledger_committed_transactions_total"
        )
        assert moved >= 2, f"{name} counted {moved} new transactions, not the issue and payment"
        assert value(new, "straits_ledger_height") >= payment.committed_height, name
        assert value(new, "straits_consensus_height") > payment.committed_height, name
        assert (
            value(new, "straits_ledger_supply_minor_units")
            - value(old, "straits_ledger_supply_minor_units")
            == 70_000
        ), f"{name}'s supply did not grow by the amount issued"
        assert value(new, "straits_consensus_blocks_committed_total") > value(
            old, "straits_consensus_blocks_committed_total"
        ), name
        checked = (
            "straits_verifier_signatures_verified_total",
            "straits_verifier_cache_hits_total",
        )
        assert sum(value(new, n) - value(old, n) for n in checked) > 0, (
            f"{name} checked no signature for the new transactions"
        )
        assert value(new, "straits_ledger_block_transactions_count") > value(
            old, "straits_ledger_block_transactions_count"
        ), f"{name}'s block histogram observed no new block"

    central_bank_after = scrape(network.central_bank.config)
    assert value(central_bank_after, "straits_participant_followed_height") >= issued.height
    assert value(central_bank_after, "straits_participant_pending_transactions") == 0, (
        "the central bank still counts its committed issue as pending"
    )

    settled = "straits_bank_payments_finalised_total"
    payee = network.banks["bank-b"]
    assert payee.follower.wait_for(lambda: payee.height >= payment.committed_height, WAIT_S)
    for bank, direction, old in (
        ("bank-a", "outgoing", payer_before),
        ("bank-b", "incoming", payee_before),
    ):
        new = scrape(network.banks[bank].config)
        moved = value(new, settled, status="settled", direction=direction) - value(
            old, settled, status="settled", direction=direction
        )
        assert moved == 1, f"{bank} counted {moved} settled {direction} payments, not 1"


def test_a_payment_queued_for_want_of_funds_shows_in_the_payers_and_ledgers_queues(
    metrics_network: Network,
) -> None:
    network = metrics_network
    payer = network.banks["bank-b"]
    balance = network.bank("bank-b").balance().balance
    queued = {"status": "queued", "direction": "outgoing"}
    before = scrape(payer.config)
    ledger_before = committed_snapshot(network)

    payment = network.bank("bank-b").send("bank-a", balance + 1, reference="short", wait=True)

    assert payment.status == bank_pb.PAYMENT_STATUS_QUEUED, payment
    assert (
        value(scrape(payer.config), "straits_bank_payments", **queued)
        == value(before, "straits_bank_payments", **queued) + 1
    ), "bank-b's queued outgoing payments did not grow by one"
    wait_until_all_committed(network, payment.committed_height)
    for validator in network.validators:
        name = validator.config.id
        grown = value(scrape(validator.config), "straits_ledger_queued_transfers") - value(
            ledger_before[name], "straits_ledger_queued_transfers"
        )
        assert grown == 1, f"{name} counts {grown} more queued transfers, not 1"
