"""A bank node survives validators going away and its own restart, and never pays twice.

Each story has its own in-process network, since it stops nodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from straits.bank.v1 import bank_pb2 as pb

from clients.sdk import ApiError
from services.participant.bank.node import BankNode
from services.participant.node import ParticipantSettings
from services.validator.node import ValidatorNode
from tests.bank.network import Network, running_network


@pytest.fixture()
def fresh_network(tmp_path: Path) -> Iterator[Network]:
    with running_network(tmp_path, banks=2) as network:
        network.central_bank_client().issue("bank-a", 100_000, "bond-a")
        yield network


def test_payments_keep_settling_when_the_preferred_validator_stops(fresh_network: Network) -> None:
    bank = fresh_network.bank("bank-a")
    bank.send("bank-b", 1, wait=True)  # the node now follows and submits via validator-1

    fresh_network.validators[0].stop()
    payments = [bank.send("bank-b", 10 + i, wait=True) for i in range(3)]

    assert [p.status for p in payments] == [pb.PAYMENT_STATUS_SETTLED] * 3, payments
    assert bank.balance().balance == 100_000 - 1 - 10 - 11 - 12


def test_a_payment_sent_while_no_validator_answers_is_forwarded_later_and_paid_once(
    fresh_network: Network,
) -> None:
    bank = fresh_network.bank("bank-a")
    bank.send("bank-b", 1, wait=True)
    configs = [v.config for v in fresh_network.validators]
    for validator in fresh_network.validators:
        validator.stop()

    with pytest.raises(ApiError) as down:
        bank.send("bank-b", 500, request_id="while-down")
    assert down.value.code == grpc.StatusCode.UNAVAILABLE
    assert bank.payment(request_id="while-down").status == pb.PAYMENT_STATUS_PENDING

    fresh_network.validators = [ValidatorNode(c) for c in configs]
    for validator in fresh_network.validators:
        validator.start()
    paid = bank.send("bank-b", 500, request_id="while-down", wait=True)

    assert paid.status == pb.PAYMENT_STATUS_SETTLED, paid
    assert bank.balance().balance == 100_000 - 1 - 500


def test_a_restarted_bank_node_keeps_its_payments_and_resumes_following(
    fresh_network: Network,
) -> None:
    bank = fresh_network.bank("bank-a")
    first = bank.send("bank-b", 70, request_id="before-restart", wait=True)
    node = fresh_network.banks["bank-a"]
    node.stop()

    fresh_network.banks["bank-a"] = restarted = BankNode(node.config)
    restarted.start()
    bank = fresh_network.bank("bank-a")

    again = bank.send("bank-b", 70, request_id="before-restart", wait=True)
    assert again.transfer_id == first.transfer_id and again.status == pb.PAYMENT_STATUS_SETTLED
    later = bank.send("bank-b", 30, wait=True)
    assert later.status == pb.PAYMENT_STATUS_SETTLED
    assert later.committed_height > first.committed_height
    assert bank.balance().balance == 100_000 - 100
    assert restarted.height >= later.committed_height


def test_a_payment_whose_window_passes_unsent_expires_and_is_never_paid(
    fresh_network: Network,
) -> None:
    network = fresh_network
    bank = network.bank("bank-a")
    # A window of a few blocks, so that it can pass within the test.
    short = ParticipantSettings(lifetime_margin=250)
    node = network.banks["bank-a"]
    node.stop()
    network.banks["bank-a"] = node = BankNode(node.config, short)
    node.start()
    bank.send("bank-b", 1, wait=True)  # the node has seen the head: it can sign offline
    configs = [v.config for v in network.validators]
    for validator in network.validators:
        validator.stop()
    with pytest.raises(ApiError):
        bank.send("bank-b", 400, request_id="too-late")
    node.stop()

    network.validators = [ValidatorNode(c) for c in configs]
    for validator in network.validators:
        validator.start()
    central_bank = network.central_bank_client()
    for i in range(8):  # eight blocks: well past the payment's window
        central_bank.issue("bank-b", 1, f"bond-{i}")
    network.banks["bank-a"] = node = BankNode(node.config, short)
    node.start()

    statuses = {}
    for event in bank.watch(from_height=1, direction=pb.DIRECTION_OUTGOING, timeout=20):
        statuses[event.payment.request_id] = event.payment.status
        if "too-late" in statuses:
            break
    assert statuses["too-late"] == pb.PAYMENT_STATUS_EXPIRED
    assert bank.send("bank-b", 400, request_id="too-late").status == pb.PAYMENT_STATUS_EXPIRED
    assert bank.balance().balance == 100_000 - 1


def test_the_bank_node_leaves_a_validator_that_stops_committing(fresh_network: Network) -> None:
    bank = fresh_network.bank("bank-a")
    bank.send("bank-b", 1, wait=True)  # the node now follows validator-1
    # Cut off: validator-1 still answers calls but its node loop no longer runs.
    fresh_network.validators[0].driver.stop()

    paid = bank.send("bank-b", 44, wait=True)

    assert paid.status == pb.PAYMENT_STATUS_SETTLED, paid
    assert fresh_network.banks["bank-a"].height >= paid.committed_height
