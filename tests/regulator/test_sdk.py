"""The regulator's seat in the SDK, over real gRPC and mutual TLS: it reads everything,
on whichever node serves it, and every write is refused in words."""

from __future__ import annotations

import grpc
import pytest
from straits.bank.v1 import bank_pb2
from straits.validator.v1 import validator_pb2, validator_pb2_grpc

from clients.sdk import ApiError, CentralBankClient, Regulator
from tests.regulator.conftest import Story


def refused(call, *args, **kwargs) -> ApiError:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiError) as refusal:
        result = call(*args, **kwargs)
        list(result) if hasattr(result, "__next__") else result
    return refusal.value


def test_regulator_sees_every_position_and_the_supply(story: Story, regulator: Regulator) -> None:
    positions = {a.id: a for a in regulator.positions()}
    assert {"bank-a", "bank-b", "central-bank", "regulator"} <= set(positions), positions
    assert positions["bank-a"].balance == story.issued - 2_500 + 0
    assert positions["bank-b"].balance == 2_500 and positions["bank-b"].queued_out == 5_000
    supply = regulator.supply()
    assert (supply.issued, supply.redeemed, supply.total_supply) == (story.issued, 0, story.issued)
    assert sum(a.balance for a in positions.values()) == supply.total_supply


def test_regulator_reads_any_banks_queue_history_and_balance(
    story: Story, regulator: Regulator
) -> None:
    queue = regulator.bank("bank-b").queue()
    assert [p.transfer_id for p in queue.outgoing] == [story.queued.transfer_id]
    history = list(regulator.bank("bank-a").history())
    assert story.settled.transfer_id in {p.transfer_id for p in history}
    assert regulator.bank("bank-a").balance().id == "bank-a"
    assert regulator.bank("bank-b").payment(transfer_id=story.queued.transfer_id).status == (
        bank_pb2.PAYMENT_STATUS_QUEUED
    )


def test_regulator_reads_whole_blocks_and_any_transaction(
    story: Story, regulator: Regulator
) -> None:
    validator = regulator.validator()
    head = validator.head()
    assert [v.id for v in head.validators] == [f"validator-{i}" for i in range(1, 5)]
    views = validator.blocks(1, head.height)
    carried = {t for v in views for t in v.transaction_ids}
    assert {story.settled.transfer_id, story.queued.transfer_id} <= carried
    assert not any(v.redacted for v in views), "the regulator sees blocks whole"
    answer = validator.transaction(story.queued.transfer_id)
    assert answer.status == validator_pb2.TRANSACTION_STATUS_COMMITTED


def test_every_write_is_refused_to_the_regulator_naming_who_may(
    story: Story, regulator: Regulator
) -> None:
    bank = regulator.bank("bank-a")
    for write, args in [
        (bank.send, ("bank-b", 1)),
        (bank.cancel, (story.queued.transfer_id,)),
        (bank.redeem, (1, "bond-a")),
    ]:
        refusal = refused(write, *args)
        assert refusal.code is grpc.StatusCode.PERMISSION_DENIED, refusal
        assert "clients of the node's own participant" in refusal.message, refusal.message
    refusal = refused(regulator.central_bank().issue, "bank-a", 1, "bond-x")
    assert refusal.code is grpc.StatusCode.PERMISSION_DENIED
    assert "caller 'regulator' is regulator" in refusal.message, refusal.message
    stub = validator_pb2_grpc.ValidatorServiceStub(
        story.network.channel("validator-1", story.network.layout.regulator))
    with pytest.raises(grpc.RpcError) as submit:
        stub.SubmitTransactions(validator_pb2.SubmitTransactionsRequest(), timeout=10)
    assert submit.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "the central bank's node and bank nodes" in (submit.value.details() or "")


def test_a_bank_asking_its_own_node_for_positions_is_told_who_serves_them(story: Story) -> None:
    network = story.network
    wrong = CentralBankClient(network.channel("bank-a", network.client_tls("bank-a")))
    refusal = refused(wrong.positions)
    assert refusal.code is grpc.StatusCode.PERMISSION_DENIED, refusal
    assert "served by the central bank's node" in refusal.message, refusal.message
    assert "this is 'bank-a''s node" in refusal.message, refusal.message


def test_a_stream_asked_of_the_wrong_node_is_refused_too(
    story: Story, regulator: Regulator
) -> None:
    from clients.sdk import BankClient

    on_validator = BankClient(
        story.network.channel("validator-2", story.network.layout.regulator))
    refusal = refused(on_validator.watch, timeout=10)
    assert refusal.code is grpc.StatusCode.PERMISSION_DENIED, refusal
    assert "each bank's own node" in refusal.message, refusal.message


def test_regulator_watches_a_banks_settlements_as_they_happened(
    story: Story, regulator: Regulator
) -> None:
    events = regulator.bank("bank-b").watch(from_height=1, timeout=10)
    first = next(iter(events))
    assert first.payment.transfer_id in {story.settled.transfer_id, story.queued.transfer_id}
