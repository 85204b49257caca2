"""The intake pushes back when full: a bank is told to slow down, a shared batch is dropped,
and what was queued is still admitted, merged into one call for the verifier."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from straits.ledger.v1 import transaction_pb2 as tx_pb
from straits.validator.v1 import validator_pb2 as pb

from services.common.errors import OverloadedError
from services.validator.intake import Intake


class RecordingAdmitter:
    """Stands in for the admission chain: records each call, accepts everything."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str | None, bool]] = []
        self.answered: list[bool] = []

    def admit(
        self,
        signed: Sequence[tx_pb.SignedTransaction],
        *,
        sender: str | None,
        check_rules: bool,
        answer: bool = True,
    ) -> list[pb.SubmissionResult]:
        self.calls.append((len(signed), sender, check_rules))
        self.answered.append(answer)
        if not answer:
            return []
        return [pb.SubmissionResult(status=pb.SUBMISSION_STATUS_ACCEPTED) for _ in signed]


def batch(n: int) -> list[tx_pb.SignedTransaction]:
    return [tx_pb.SignedTransaction(body=bytes([i])) for i in range(n)]


def test_a_full_intake_refuses_a_bank_and_drops_a_shared_batch() -> None:
    admitter = RecordingAdmitter()
    intake = Intake(admitter, capacity=4)  # type: ignore[arg-type]
    assert intake.share(batch(3))
    assert intake.share(batch(1))
    assert not intake.share(batch(2)), "a shared batch beyond capacity must be dropped"
    assert intake.stats.shared_dropped == 2
    with pytest.raises(OverloadedError, match="retry shortly"):
        intake.submit(batch(1), sender="bank-a", timeout=1)
    assert intake.stats.submissions_refused == 1

    intake.start()
    try:
        assert intake.submit(batch(2), sender="bank-a", timeout=5)[0].status == (
            pb.SUBMISSION_STATUS_ACCEPTED
        )
    finally:
        intake.stop()
    # The two shared batches waited together and went to admission as one call, without
    # the business rules (their validator checked those); the bank's batch with them.
    assert (4, None, False) in admitter.calls
    assert (2, "bank-a", True) in admitter.calls
    # Nobody waits on a shared batch, so no answers are built for it; the bank gets its own.
    answered = dict(zip((c[1] for c in admitter.calls), admitter.answered, strict=True))
    assert answered == {None: False, "bank-a": True}


def test_an_oversized_batch_still_enters_an_empty_intake() -> None:
    intake = Intake(RecordingAdmitter(), capacity=2)  # type: ignore[arg-type]
    intake.start()
    try:
        assert len(intake.submit(batch(5), sender="bank-a", timeout=5)) == 5
    finally:
        intake.stop()
