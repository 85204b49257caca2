"""Gridlock on a real network: three banks holding nothing owe each other in a cycle,
each sends its payment through its own bank node, and the liquidity-saving mechanism
settles all three together in one block; every bank node and every validator says so."""

from __future__ import annotations

from straits.bank.v1 import bank_pb2

from tests.e2e.conftest import ProcessNetwork

SETTLED = bank_pb2.PAYMENT_STATUS_SETTLED
QUEUED = bank_pb2.PAYMENT_STATUS_QUEUED
CYCLE = (("bank-a", "bank-b"), ("bank-b", "bank-c"), ("bank-c", "bank-a"))


def test_three_banks_with_nothing_clear_a_cycle_in_one_block(
    process_network: ProcessNetwork,
) -> None:
    network = process_network
    regulator = network.regulator(network.validator_ids[0])
    assert all(regulator.account(b).balance == 0 for b, _ in CYCLE), "banks start with nothing"

    sent = {}
    for payer, payee in CYCLE[:2]:
        payment = network.bank(payer).send(payee, 250_00, reference="cycle", wait=True)
        assert payment.status == QUEUED, f"{payer} has nothing: its payment must wait"
        sent[payer] = payment.transfer_id
    last = network.bank("bank-c").send("bank-a", 250_00, reference="cycle", wait=True)
    sent["bank-c"] = last.transfer_id

    def seen_by_payer(payer: str) -> bank_pb2.Payment:
        return network.bank(payer).payment(transfer_id=sent[payer])

    network.wait_for(
        lambda: all(seen_by_payer(p).status == SETTLED for p in sent),
        timeout=30,
        what="every bank node to report its payment settled",
    )
    payments = {p: seen_by_payer(p) for p in sent}
    heights = {p.settled_height for p in payments.values()}
    assert len(heights) == 1, f"all three settle in one block, got heights {heights}"
    assert all(p.reason == "settled_by_offsetting" for p in payments.values())
    # The payee's node reports the incoming side the same way.
    incoming = network.bank("bank-b").payment(transfer_id=sent["bank-a"])
    assert (incoming.status, incoming.reason) == (SETTLED, "settled_by_offsetting")

    (height,) = heights
    for validator in network.validator_ids:
        view = network.regulator(validator)
        network.wait_for(
            lambda view=view: view.head().height >= height,
            timeout=30,
            what=f"{validator} to reach height {height}",
        )
        for transfer_id in sent.values():
            record = view.transaction(transfer_id)
            assert record.queue_outcome_height == height, validator
            assert record.queue_settlement.by_offsetting, validator
        assert [view.account(b).balance for b, _ in CYCLE] == [0, 0, 0], validator
