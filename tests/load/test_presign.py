"""Presigned payments: a run measuring the ledger signs its payments before the clock
starts and sends exactly those bytes; a payment with a fault, or one whose validity is
running out, is signed when it is sent."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from straits.ledger.v1 import transaction_pb2 as tx_pb
from straits.validator.v1 import validator_pb2 as validator_pb

from clients.load.runner import PRESIGN_HEIGHTS, LoadRun, LoadSettings
from clients.load.submitters import LedgerPath
from clients.load.workload import Order, Prepared, Workload
from ledger.keys import PrivateKey
from wire.errors import ConfigError

BANKS = ("bank-a", "bank-b")
KEYS = {b: PrivateKey.from_seed(bytes([i + 1]) * 32) for i, b in enumerate(BANKS)}
AHEAD = 128


class RecordingChannel:
    """Stands in for the validator: records each submission and accepts every item."""

    def __init__(self) -> None:
        self.sent: list[tx_pb.SignedTransaction] = []

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return self._unused

    def _unused(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a load run submits; it does not stream here")

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        if not method.endswith("/SubmitTransactions"):
            return self._unused

        def call(request: validator_pb.SubmitTransactionsRequest, timeout: float) -> Any:
            self.sent.extend(request.transactions)
            return validator_pb.SubmitTransactionsResponse(results=[
                validator_pb.SubmissionResult(status=validator_pb.SUBMISSION_STATUS_ACCEPTED)
                for _ in request.transactions])
        return call


def _valid_until(signed: tx_pb.SignedTransaction) -> int:
    return tx_pb.TransactionBody.FromString(signed.body).valid_until_height


def _path(height: list[int]) -> tuple[LedgerPath, RecordingChannel]:
    channel = RecordingChannel()
    path = LedgerPath("straits-test", KEYS, {b: [channel] for b in BANKS},  # type: ignore[list-item]
                      height=lambda: height[0], ahead=AHEAD)
    return path, channel


def test_presigned_payments_are_sent_as_signed_and_faulty_ones_signed_when_sent():
    height = [10]
    path, channel = _path(height)
    orders = [Order(i, "bank-a", "bank-b", 5 + i) for i in range(4)]
    faulty = Order(4, "bank-a", "bank-b", 0, fault="zero_amount")
    path.presign([*orders, faulty], valid_until=10 + 255)
    height[0] = 40  # blocks went by between signing and sending
    answers = path.submit([*orders, faulty])

    assert [a.accepted for a in answers] == [True] * 5
    assert [_valid_until(s) for s in channel.sent] == [265] * 4 + [40 + AHEAD]
    assert path.signed_when_sent == 0, "a faulty order is signed when sent by design"
    # The same order again is not the same payment twice: it is signed afresh, and counted.
    path.submit(orders[:1])
    assert _valid_until(channel.sent[-1]) == 40 + AHEAD
    assert channel.sent[-1].signature != channel.sent[0].signature
    assert path.signed_when_sent == 1


def test_a_presigned_payment_close_to_its_last_block_is_signed_again():
    height = [10]
    path, channel = _path(height)
    early = [Order(i, "bank-b", "bank-a", 1) for i in range(2)]
    late = Order(2, "bank-b", "bank-a", 1)
    path.presign(early, valid_until=100)
    path.presign([late], valid_until=200)  # each keeps its own validity
    height[0] = 100 - path.margin - 1  # one block more than the margin left: sent as signed
    path.submit(early[:1])
    height[0] += 1  # only the margin left: signed now, for the full validity
    path.submit([early[1], late])
    assert [_valid_until(s) for s in channel.sent] == [100, height[0] + AHEAD, 200]
    assert path.signed_when_sent == 1


def test_prepared_batches_come_first_then_the_workload_goes_on():
    workload = Workload(BANKS, seed=3)
    ahead = [workload.batch(4), workload.batch(4)]
    prepared = Prepared(workload, ahead)
    assert prepared.batch(4) == ahead[0]
    short = prepared.batch(2)  # another size: made now, the prepared one stays next
    assert len(short) == 2 and short[0].index == 8
    assert prepared.batch(4) == ahead[1]
    assert [o.index for o in prepared.batch(4)] == [10, 11, 12, 13]


class RecordingPath:
    """Stands in for ``LedgerPath`` to see what ``LoadRun`` presigns, and for how long."""

    def __init__(self) -> None:
        self.presigned: list[tuple[list[Order], int]] = []

    def presign(self, orders: list[Order], valid_until: int) -> None:
        self.presigned.append((list(orders), valid_until))


def test_a_run_presigns_whole_batches_within_the_ledgers_horizon_spread_over_heights():
    lifetime, head = 256, 40
    settings = LoadSettings(via="validators", concurrency=2, batch=10, presign=405)
    run = LoadRun(settings, SimpleNamespace(max_transaction_lifetime=lifetime))  # type: ignore[arg-type]
    path = RecordingPath()
    prepared = run._presign(path, Workload(BANKS, seed=5), head)  # type: ignore[arg-type]

    assert [len(orders) for orders, _ in path.presigned] == [10] * 41  # whole batches
    heights = [valid_until for _, valid_until in path.presigned]
    # Inside the horizon of the next block (head + 1 + lifetime) and of any later one,
    # never its last height for every payment: spread as live signing would spread them.
    assert max(heights) == head + lifetime - 1
    assert min(heights) == head + lifetime - PRESIGN_HEIGHTS
    assert len(set(heights)) == PRESIGN_HEIGHTS
    # The workload hands out exactly the batches that were signed, in order.
    assert prepared.batch(10) == path.presigned[0][0]
    assert prepared.batch(10) == path.presigned[1][0]


@pytest.mark.parametrize("settings", [
    dict(via="bank", presign=10),
    dict(via="validators", rate=50.0, presign=10),
    dict(via="validators", presign=-1),
    dict(via="validators", presign=101, count=100),
])
def test_presign_is_refused_where_it_cannot_apply(settings: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match="presign"):
        LoadSettings(**settings)
