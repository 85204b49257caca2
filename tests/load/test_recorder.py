"""Verdicts: a good payment becomes a sample from submission to its final block; a
deliberately bad one counts as refused only if it was refused or rejected, and one
that settled or never became final is reported as NOT refused."""

from __future__ import annotations

from straits.ledger.v1 import block_pb2, receipt_pb2
from straits.validator.v1 import validator_pb2 as validator_pb

from clients.load.finality import FinalityTracker
from clients.load.recorder import UNFINISHED, Recorder
from clients.load.submitters import ACCEPTED, Submitted
from clients.load.workload import Order


def order(index: int, fault: str = "") -> Order:
    return Order(index, "bank-a", "bank-b", 10, fault)


def committed(height: int, *outcomes: tuple[bytes, int]) -> validator_pb.BlockView:
    header = block_pb2.BlockHeader(height=height).SerializeToString()
    return validator_pb.BlockView(
        block=block_pb2.Block(header=header),
        receipts=[receipt_pb2.Receipt(transaction_id=tx, outcome=o,
                                      reason="unknown_account" if o == receipt_pb2.OUTCOME_REJECTED
                                      else "")
                  for tx, o in outcomes])


def test_good_and_bad_payments_of_one_batch_are_judged_each_on_their_own() -> None:
    tracker, now = FinalityTracker(), [10.0]
    recorder = Recorder(tracker, lambda: now[0])
    finished = []
    recorder.record(10.0, [
        Submitted(order(0), b"good", ACCEPTED),
        Submitted(order(1, "zero_amount"), b"", "INVALID_ARGUMENT", "malformed_transaction"),
        Submitted(order(2, "unknown_payee"), b"rejected-later", ACCEPTED),
        Submitted(order(3, "bad_signature"), b"slipped-through", ACCEPTED),
        Submitted(order(4), b"", "RESOURCE_EXHAUSTED", "overloaded"),
    ], on_final=lambda: finished.append(True))
    tracker.observe(committed(5, (b"good", receipt_pb2.OUTCOME_SETTLED),
                              (b"rejected-later", receipt_pb2.OUTCOME_REJECTED),
                              (b"slipped-through", receipt_pb2.OUTCOME_SETTLED)), received=10.25)

    assert finished == [True], "the batch is final once every accepted payment is"
    by_status = {s.status: s for s in recorder.samples}
    assert by_status["SETTLED"].finished - by_status["SETTLED"].submitted == 0.25
    assert by_status["RESOURCE_EXHAUSTED"].reason == "overloaded"
    bad = recorder.bad.to_dict()
    assert (bad["sent"], bad["refused"], bad["not_refused"]) == (3, 2, 1)
    assert bad["refusals"] == {
        "zero_amount -> INVALID_ARGUMENT: malformed_transaction": 1,
        "unknown_payee -> REJECTED: unknown_account": 1,
    }
    assert bad["not_refused_detail"] == {"bad_signature -> SETTLED": 1}


def test_what_is_not_final_when_the_run_ends_is_unfinished_and_not_counted_as_refused() -> None:
    tracker = FinalityTracker()
    recorder = Recorder(tracker, lambda: 20.0)
    recorder.record(19.0, [Submitted(order(0), b"slow", ACCEPTED),
                           Submitted(order(1, "resent"), b"again", ACCEPTED)])
    assert recorder.open == 2
    recorder.close()
    assert [(s.status, s.finished) for s in recorder.samples] == [(UNFINISHED, 20.0)]
    assert recorder.bad.to_dict()["not_refused_detail"] == {"resent -> UNFINISHED": 1}
    assert tracker.waiting == 0 and recorder.open == 0
