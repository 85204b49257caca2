"""A bank node does not believe a validator that lies about what happened to payments.

A live network (4 validators, the central bank, 2 banks, real gRPC over mutual TLS and
SQLite files); validator-1, which the nodes follow first, rewrites the outcomes in the
views it serves. The bank nodes refuse its blocks, follow another validator, and record
what the chain really did.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from straits.bank.v1 import bank_pb2 as pb
from straits.ledger.v1 import receipt_pb2 as receipt_pb

from services.validator.commits import Committed
from tests.bank.network import Network, running_network


@pytest.fixture()
def network(tmp_path: Path) -> Iterator[Network]:
    with running_network(tmp_path, banks=2) as network:
        network.central_bank_client().issue("bank-a", 100_000, "bond-a")
        yield network


def lying(get: Callable[[int], Committed | None]) -> Callable[[int], Committed | None]:
    """Serves every SETTLED receipt as REJECTED, as a validator with a tampered store would."""

    def get_rewritten(height: int) -> Committed | None:
        committed = get(height)
        if committed is None:
            return None
        receipts = []
        for receipt in committed.receipts:
            if receipt.outcome == receipt_pb.OUTCOME_SETTLED:
                receipt = receipt_pb.Receipt(
                    transaction_id=receipt.transaction_id,
                    outcome=receipt_pb.OUTCOME_REJECTED,
                    reason="insufficient_funds",
                )
            receipts.append(receipt)
        return dataclasses.replace(committed, receipts=tuple(receipts))

    return get_rewritten


def test_a_payment_a_lying_validator_calls_rejected_is_recorded_as_settled_once(
    network: Network, caplog: pytest.LogCaptureFixture
) -> None:
    liar = network.validators[0]
    assert liar.config.id == "validator-1"
    liar.feed.get = lying(liar.feed.get)  # type: ignore[method-assign]
    bank_a, bank_b = network.bank("bank-a"), network.bank("bank-b")

    with caplog.at_level(logging.WARNING, logger="services.participant.follower"):
        paid = bank_a.send("bank-b", 2_500, request_id="invoice-1", wait=True)

    assert paid.status == pb.PAYMENT_STATUS_SETTLED, paid
    received = [p for p in bank_b.history() if p.transfer_id == paid.transfer_id]
    assert [p.status for p in received] == [pb.PAYMENT_STATUS_SETTLED]
    assert bank_a.balance().balance == 100_000 - 2_500
    assert bank_b.balance().balance == 2_500
    refusals = [r.getMessage() for r in caplog.records if "refused a block from" in r.getMessage()]
    assert any("validator-1" in m and "receipt" in m for m in refusals), refusals
    for node in network.banks.values():
        assert node.upstream.order()[0] != 0, f"{node.config.id} still prefers the liar"
