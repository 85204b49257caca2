"""Central-bank stories over real gRPC and mutual TLS: issue, redeem, govern, supply.

One in-process network for the module (4 validators, the central bank, 3 banks).
"""

from __future__ import annotations

import grpc
import pytest
from straits.ledger.v1 import receipt_pb2 as receipt_pb
from straits.ledger.v1 import transaction_pb2 as tx_pb

from clients.sdk import ApiError, CentralBankClient
from ledger.keys import PrivateKey
from tests.bank.network import Network

APPLIED = receipt_pb.OUTCOME_APPLIED


def settled_supply(network: Network, height: int) -> int:
    """Total supply as the central bank's node sees it once it has followed ``height``."""
    node = network.central_bank
    assert node is not None
    caught_up = node.follower.wait_for(lambda: node.height >= height, 10)
    assert caught_up, "central-bank node fell behind"
    return network.central_bank_client().total_supply().total_supply


def balances(network: Network) -> dict[str, int]:
    return {a.id: a.balance for a in network.central_bank_client().positions(page_size=2)}


def test_issue_is_idempotent_by_request_id(network: Network) -> None:
    central_bank = network.central_bank_client()
    before = central_bank.total_supply()

    first = central_bank.issue("bank-a", 50_000, "bond-7", request_id="issue-story-1")
    again = central_bank.issue("bank-a", 50_000, "bond-7", request_id="issue-story-1")

    assert first.receipt.outcome == APPLIED, first
    assert again.transaction_id == first.transaction_id
    after = central_bank.total_supply()
    assert (after.issued, after.total_supply) == (
        before.issued + 50_000,
        before.total_supply + 50_000,
    )
    with pytest.raises(ApiError) as changed:
        central_bank.issue("bank-a", 60_000, "bond-7", request_id="issue-story-1")
    assert (changed.value.code, changed.value.reason) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "duplicate_request",
    )


def test_supply_adds_up_after_issues_payments_and_a_redemption(network: Network) -> None:
    central_bank = network.central_bank_client()
    central_bank.issue("bank-b", 30_000, "bond-b")
    network.bank("bank-b").send("bank-c", 4_000, wait=True)

    redeemed = network.bank("bank-b").redeem(1_500, "bond-b", request_id="redeem-story-1")

    assert redeemed.receipt.outcome == APPLIED, redeemed
    supply = settled_supply(network, redeemed.height)
    totals = central_bank.total_supply()
    assert totals.redeemed >= 1_500
    assert supply == totals.issued - totals.redeemed == sum(balances(network).values())


def test_the_central_bank_presents_a_redemption_the_bank_signed(network: Network) -> None:
    network.central_bank_client().issue("bank-c", 2_000, "bond-c")
    bank_node = network.banks["bank-c"]
    commit = network.bank("bank-c").redeem(500, "bond-c", request_id="redeem-story-2")
    entry = bank_node.outbox.by_request("redeem-story-2")
    assert entry is not None

    presented = network.central_bank_client().redeem(entry.transaction.to_proto())

    assert presented.transaction_id == commit.transaction_id
    assert presented.height == commit.height and presented.receipt.outcome == APPLIED


def test_the_central_bank_forwards_a_redemption_the_bank_signed_but_never_sent(
    network: Network,
) -> None:
    network.central_bank_client().issue("bank-c", 1_000, "bond-c2")
    bank_node = network.banks["bank-c"]
    # The bank signs a redemption and hands it over out of band; only the central bank sends it.
    signed = bank_node.sign(redeem=tx_pb.Redeem(amount=300, collateral_ref="bond-c2"))
    before = network.regulator().account("bank-c").balance

    presented = network.central_bank_client().redeem(signed.to_proto())

    assert presented.transaction_id == signed.id
    assert presented.receipt.outcome == APPLIED, presented
    assert network.regulator().account("bank-c").balance <= before - 300


def test_the_central_bank_admits_suspends_and_unsuspends_a_bank(network: Network) -> None:
    central_bank = network.central_bank_client()
    key = PrivateKey.from_seed(b"bank-new".ljust(32, b"\0")).public_key.to_proto()

    admitted = central_bank.admit_bank("bank-new", key, "Bank New")
    assert admitted.receipt.outcome == APPLIED, admitted
    with pytest.raises(ApiError) as twice:
        central_bank.admit_bank("bank-new", key, "Bank New")
    assert (twice.value.code, twice.value.reason) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "already_exists",
    )

    assert central_bank.suspend_bank("bank-new").receipt.outcome == APPLIED
    accounts = {a.id: a for a in central_bank.positions()}
    assert accounts["bank-new"].suspended and accounts["bank-new"].name == "Bank New"
    assert central_bank.unsuspend_bank("bank-new").receipt.outcome == APPLIED
    assert not {a.id: a for a in central_bank.positions()}["bank-new"].suspended


def test_the_central_bank_proposes_a_validator_set_for_a_later_height(network: Network) -> None:
    head = network.regulator().head()

    commit = network.central_bank_client().propose_validators(head.validators, head.height + 1_000)
    assert commit.receipt.outcome == APPLIED, commit
    with pytest.raises(ApiError) as past:
        network.central_bank_client().propose_validators(head.validators, 1)
    assert (past.value.code, past.value.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "invalid_governance",
    )


def test_only_the_central_banks_clients_reach_its_node(network: Network) -> None:
    as_bank = CentralBankClient(network.channel("central-bank", network.client_tls("bank-a")))
    with pytest.raises(ApiError) as denied:
        as_bank.total_supply()
    assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED
    as_regulator = CentralBankClient(network.channel("central-bank", network.layout.regulator))
    with pytest.raises(ApiError) as also_denied:
        as_regulator.suspend_bank("bank-a")
    assert also_denied.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_bad_issues_are_refused_or_rejected_and_leave_the_supply_unchanged(
    network: Network,
) -> None:
    central_bank = network.central_bank_client()
    before = central_bank.total_supply().total_supply
    with pytest.raises(ApiError) as zero:
        central_bank.issue("bank-a", 0, "bond-0")
    assert zero.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(ApiError) as unknown:
        central_bank.issue("nobody", 10, "bond-x")
    assert unknown.value.code == grpc.StatusCode.NOT_FOUND, unknown.value
    assert central_bank.total_supply().total_supply == before
