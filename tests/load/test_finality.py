"""Finality stories: the tracker reads committed blocks as the regulator sees them and
says when each payment became final, including payments that queued first."""

from __future__ import annotations

from collections.abc import Sequence

from straits.ledger.v1 import block_pb2, receipt_pb2
from straits.validator.v1 import validator_pb2 as validator_pb

from clients.load.finality import REJECTED, SETTLED, Finality, FinalityTracker

SETTLES, QUEUES, REFUSES = (receipt_pb2.OUTCOME_SETTLED, receipt_pb2.OUTCOME_QUEUED,
                            receipt_pb2.OUTCOME_REJECTED)


def block(height: int, receipts: Sequence[tuple[bytes, int]] = (),
          settled_from_queue: Sequence[bytes] = ()) -> validator_pb.BlockView:
    header = block_pb2.BlockHeader(chain_id="straits-test", height=height)
    return validator_pb.BlockView(
        block=block_pb2.Block(header=header.SerializeToString()),
        receipts=[receipt_pb2.Receipt(transaction_id=tx, outcome=outcome,
                                      reason="insufficient_funds" if outcome == REFUSES else "")
                  for tx, outcome in receipts],
        queue_settlements=[receipt_pb2.QueueSettlement(transfer_id=tx,
                                                       outcome=receipt_pb2.OUTCOME_SETTLED)
                           for tx in settled_from_queue])


def test_a_payment_is_final_when_the_block_that_settles_it_is_received() -> None:
    tracker, heard = FinalityTracker(), []
    tracker.expect(b"pay-1", heard.append)
    tracker.observe(block(7, [(b"pay-1", SETTLES)]), received=12.5)
    assert heard == [Finality(b"pay-1", SETTLED, "", 7, 12.5)]
    assert tracker.height == 7 and tracker.waiting == 0


def test_a_queued_payment_is_final_only_when_a_later_block_settles_it_from_the_queue() -> None:
    tracker, heard = FinalityTracker(), []
    tracker.expect(b"pay-q", heard.append)
    tracker.observe(block(3, [(b"pay-q", QUEUES)]), received=1.0)
    assert heard == [] and tracker.queued(b"pay-q"), "queued is not final"
    tracker.observe(block(4), received=2.0)
    tracker.observe(block(5, settled_from_queue=[b"pay-q"]), received=3.0)
    assert heard == [Finality(b"pay-q", SETTLED, "", 5, 3.0)]
    assert not tracker.queued(b"pay-q")


def test_a_rejected_payment_is_final_with_its_reason() -> None:
    tracker, heard = FinalityTracker(), []
    tracker.expect(b"pay-r", heard.append)
    tracker.observe(block(2, [(b"pay-r", REFUSES)]), received=4.0)
    assert heard == [Finality(b"pay-r", REJECTED, "insufficient_funds", 2, 4.0)]


def test_a_block_that_arrives_before_the_submission_answer_is_remembered() -> None:
    tracker, heard = FinalityTracker(), []
    tracker.observe(block(9, [(b"fast", SETTLES), (b"someone-elses", SETTLES)]), received=5.0)
    tracker.expect(b"fast", heard.append)
    assert heard == [Finality(b"fast", SETTLED, "", 9, 5.0)], "the earlier block must count"


def test_outcomes_nobody_claims_are_forgotten_after_the_memory_window() -> None:
    tracker, heard = FinalityTracker(remember_seconds=10.0), []
    tracker.observe(block(1, [(b"old", SETTLES)]), received=0.0)
    tracker.observe(block(2, [(b"new", SETTLES)]), received=30.0)
    tracker.expect(b"old", heard.append)
    tracker.expect(b"new", heard.append)
    assert [f.transaction_id for f in heard] == [b"new"]
    assert tracker.waiting == 1, "the forgotten one is still waited for"
    tracker.forget(b"old")
    assert tracker.waiting == 0
