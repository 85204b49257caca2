"""Bank stories over real gRPC and mutual TLS: pay, queue, settle, operate the queue, retry.

One in-process network for the module (4 validators, the central bank, 5 banks).
Banks play fixed parts so stories do not disturb each other: bank-a and bank-b are
funded payers and payees; bank-c and bank-d start with nothing, so their payments
queue; bank-e only receives.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from straits.bank.v1 import bank_pb2 as pb
from straits.ledger.v1 import receipt_pb2 as receipt_pb
from straits.ledger.v1 import transaction_pb2 as tx_pb

from clients.sdk import ApiError, BankClient, CentralBankClient
from clients.sdk.bank import Instruction
from tests.bank.network import Network

SETTLED, QUEUED = pb.PAYMENT_STATUS_SETTLED, pb.PAYMENT_STATUS_QUEUED
WATCH_TIMEOUT_S = 20


@pytest.fixture(scope="module", autouse=True)
def funded(network: Network) -> None:
    central_bank = network.central_bank_client()
    for bank in ("bank-a", "bank-b"):
        commit = central_bank.issue(bank, 1_000_000, f"bond-{bank}")
        assert commit.receipt.outcome == receipt_pb.OUTCOME_APPLIED, commit


def events(
    network: Network, bank: str, from_height: int, direction: int, count: int
) -> list[pb.WatchSettlementsResponse]:
    stream: Iterator[pb.WatchSettlementsResponse] = network.bank(bank).watch(
        from_height=from_height, direction=direction, timeout=WATCH_TIMEOUT_S
    )
    return [next(stream) for _ in range(count)]


def test_a_payment_settles_at_once_and_both_banks_record_it(network: Network) -> None:
    payer, payee = network.bank("bank-a"), network.bank("bank-b")
    before_a, before_b = payer.balance().balance, payee.balance().balance

    payment = payer.send("bank-b", 12_500, reference="invoice 42", wait=True)

    assert payment.status == SETTLED, payment
    assert payment.committed_height == payment.settled_height > 0
    assert payer.balance().balance == before_a - 12_500
    # The payee's node may lag a block behind the payer's: its watch replay waits for it.
    seen = events(network, "bank-b", payment.committed_height, pb.DIRECTION_INCOMING, 1)[0]
    assert seen.payment.transfer_id == payment.transfer_id and seen.payment.status == SETTLED
    [incoming] = [
        p
        for p in payee.history(direction=pb.DIRECTION_INCOMING)
        if p.transfer_id == payment.transfer_id
    ]
    assert incoming.payer == "bank-a" and incoming.reference == "invoice 42"
    assert payee.balance().balance == before_b + 12_500


def test_a_payment_queues_without_funds_then_settles_when_funds_arrive(network: Network) -> None:
    payer, payee = network.bank("bank-c"), network.bank("bank-e")

    payment = payer.send("bank-e", 700, wait=True)

    assert payment.status == QUEUED, payment
    queue = payer.queue()
    assert [p.transfer_id for p in queue.outgoing] == [payment.transfer_id]
    account = payer.balance()
    assert (account.balance, account.queued_out, account.position) == (0, 700, -700)

    network.central_bank_client().issue("bank-c", 1_000, "bond-c")

    outgoing = events(network, "bank-c", payment.committed_height, pb.DIRECTION_OUTGOING, 2)
    assert [e.payment.status for e in outgoing] == [QUEUED, SETTLED]
    incoming = events(network, "bank-e", payment.committed_height, pb.DIRECTION_INCOMING, 2)
    assert [e.payment.status for e in incoming] == [QUEUED, SETTLED]
    assert all(e.payment.transfer_id == payment.transfer_id for e in outgoing + incoming)
    assert payer.payment(transfer_id=payment.transfer_id).status == SETTLED
    assert payer.queue().outgoing == []
    assert payee.balance().balance == 700


def test_the_payer_holds_releases_reprioritises_and_cancels_a_queued_payment(
    network: Network,
) -> None:
    bank = network.bank("bank-d")
    payment = bank.send("bank-a", 300, wait=True)
    assert payment.status == QUEUED, payment

    held = bank.hold(payment.transfer_id)
    assert held.commit.receipt.outcome == receipt_pb.OUTCOME_APPLIED and held.payment.held
    released = bank.release(payment.transfer_id)
    assert not released.payment.held
    urgent = bank.reprioritise(payment.transfer_id, tx_pb.PRIORITY_URGENT)
    assert urgent.payment.priority == tx_pb.PRIORITY_URGENT
    cancelled = bank.cancel(payment.transfer_id)
    assert cancelled.payment.status == pb.PAYMENT_STATUS_CANCELLED, cancelled

    with pytest.raises(ApiError) as again:
        bank.cancel(payment.transfer_id)
    assert (again.value.code, again.value.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "not_queued",
    )
    assert bank.queue().outgoing == []
    assert bank.balance().queued_out == 0


def test_a_retried_send_with_the_same_request_id_pays_once(network: Network) -> None:
    bank = network.bank("bank-a")
    before = bank.balance().balance

    first = bank.send("bank-b", 999, request_id="retry-story-1", wait=True)
    second = bank.send("bank-b", 999, request_id="retry-story-1", wait=True)
    batched = bank.send_many(
        [
            Instruction("bank-b", 999, request_id="retry-story-1"),
            Instruction("bank-b", 5, request_id="retry-story-2"),
            Instruction("bank-b", 5, request_id="retry-story-2"),
        ],
        wait=True,
    )

    assert first.transfer_id == second.transfer_id == batched[0].payment.transfer_id
    assert batched[1].payment.transfer_id == batched[2].payment.transfer_id
    assert second.status == SETTLED
    assert bank.balance().balance == before - 999 - 5
    with pytest.raises(ApiError) as changed:
        bank.send("bank-b", 1_000, request_id="retry-story-1")
    assert (changed.value.code, changed.value.reason) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "duplicate_request",
    )
    assert bank.payment(request_id="retry-story-1").transfer_id == first.transfer_id


def test_a_batch_is_answered_item_by_item(network: Network) -> None:
    bank = network.bank("bank-b")
    results = bank.send_many(
        [Instruction("bank-a", 10), Instruction("nobody", 10), Instruction("bank-a", 20)], wait=True
    )

    assert [r.WhichOneof("result") for r in results] == ["payment", "error", "payment"]
    assert results[1].error.reason == "unknown_account"
    assert results[0].payment.status == results[2].payment.status == SETTLED


@pytest.mark.parametrize(
    ("payee", "amount", "request_id", "code", "reason"),
    [
        ("nobody", 10, "bad-1", grpc.StatusCode.NOT_FOUND, "unknown_account"),
        ("bank-b", 0, "bad-2", grpc.StatusCode.INVALID_ARGUMENT, "malformed_transaction"),
        ("bank-b", -5, "bad-3", grpc.StatusCode.INVALID_ARGUMENT, "malformed_transaction"),
        ("bank-b", 10, "", grpc.StatusCode.INVALID_ARGUMENT, "invalid_request"),
    ],
)
def test_bad_transfers_are_refused_and_leave_the_ledger_unchanged(
    network: Network, payee: str, amount: int, request_id: str, code: grpc.StatusCode, reason: str
) -> None:
    bank = network.bank("bank-a")
    request = pb.SendTransferRequest(
        transfer=pb.TransferInstruction(request_id=request_id, payee=payee, amount=amount),
        wait_for_commit=True,
    )
    before = bank.balance()

    with pytest.raises(grpc.RpcError) as refused:
        bank._stub.SendTransfer(request, timeout=10)

    error = ApiError.from_rpc_error(refused.value)
    assert (error.code, error.reason) == (code, reason), error.message
    if request_id:  # a retry of a refused request is refused the same way
        with pytest.raises(grpc.RpcError) as again:
            bank._stub.SendTransfer(request, timeout=10)
        assert ApiError.from_rpc_error(again.value).reason == reason
    after = bank.balance()
    assert (after.balance, after.queued_out) == (before.balance, before.queued_out)


def test_an_oversize_batch_is_refused_whole(network: Network) -> None:
    bank = network.bank("bank-a")
    with pytest.raises(ApiError) as refused:
        bank.send_many([Instruction("bank-b", 1) for _ in range(2001)])
    assert (refused.value.code, refused.value.field) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "transfers",
    )


def test_history_filters_and_pages(network: Network) -> None:
    bank = network.bank("bank-b")
    sent = [bank.send("bank-e", 5 + i, reference=f"page {i}", wait=True) for i in range(5)]

    to_e = list(bank.history(counterparty="bank-e", page_size=2))

    assert [p.transfer_id for p in to_e][:5] == [p.transfer_id for p in reversed(sent)]
    assert all(p.payee == "bank-e" and p.direction == pb.DIRECTION_OUTGOING for p in to_e)
    settled = list(bank.history(statuses=[SETTLED], from_height=sent[0].committed_height))
    assert {p.transfer_id for p in sent} <= {p.transfer_id for p in settled}


def test_a_bank_cannot_read_or_act_for_another_bank(network: Network) -> None:
    intruder = network.channel("bank-a", network.client_tls("bank-b"))

    with pytest.raises(ApiError) as reading:
        BankClient(intruder).balance()
    assert reading.value.code == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(ApiError) as paying:
        BankClient(intruder).send("bank-b", 1)
    assert paying.value.code == grpc.StatusCode.PERMISSION_DENIED
    issuing = CentralBankClient(network.channel("central-bank", network.client_tls("bank-a")))
    with pytest.raises(ApiError) as minting:
        issuing.issue("bank-a", 1_000_000, "forged")
    assert minting.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_a_listening_watcher_hears_a_new_incoming_payment(network: Network) -> None:
    payee_node = network.banks["bank-e"]
    listening = network.bank("bank-e")._stub.WatchSettlements(
        pb.WatchSettlementsRequest(
            from_height=payee_node.height + 1, direction=pb.DIRECTION_INCOMING
        ),
        timeout=WATCH_TIMEOUT_S,
    )

    payment = network.bank("bank-a").send("bank-e", 321, reference="live", wait=True)

    event = next(listening)
    assert (event.payment.transfer_id, event.payment.status) == (payment.transfer_id, SETTLED)
    assert event.height == payment.committed_height
    listening.cancel()


def test_a_payee_cannot_cancel_a_payment_queued_towards_it(network: Network) -> None:
    payment = network.bank("bank-d").send("bank-e", 55, wait=True)
    assert payment.status == QUEUED, payment
    payee = network.bank("bank-e")
    events(network, "bank-e", payment.committed_height, pb.DIRECTION_INCOMING, 1)

    assert payment.transfer_id in [p.transfer_id for p in payee.queue().incoming]
    with pytest.raises(ApiError) as refused:
        payee.cancel(payment.transfer_id)
    assert refused.value.code == grpc.StatusCode.NOT_FOUND
    assert network.bank("bank-d").payment(transfer_id=payment.transfer_id).status == QUEUED
    network.bank("bank-d").cancel(payment.transfer_id)  # leave bank-d's queue as found
