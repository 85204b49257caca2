"""The intake pushes back when full: a bank is told to slow down, a shared batch is dropped,
and what was queued is still admitted, merged into one call for the verifier. Its two
threads overlap: a batch is prepared while the one before it is being finished."""

from __future__ import annotations

import threading
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

    def prepare(
        self,
        signed: Sequence[tx_pb.SignedTransaction],
        *,
        sender: str | None,
        check_rules: bool,
        answer: bool = True,
    ) -> tuple[int, bool]:
        self.calls.append((len(signed), sender, check_rules))
        self.answered.append(answer)
        return len(signed), answer

    def finish(self, prepared: tuple[int, bool]) -> list[pb.SubmissionResult]:
        size, answer = prepared
        if not answer:
            return []
        return [pb.SubmissionResult(status=pb.SUBMISSION_STATUS_ACCEPTED) for _ in range(size)]


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


class SlowFinisher(RecordingAdmitter):
    """Finishing the first batch waits until the intake has prepared the second."""

    def __init__(self) -> None:
        super().__init__()
        self.second_prepared = threading.Event()
        self.finish_waited = False

    def prepare(self, signed, **kwargs):  # type: ignore[no-untyped-def]
        prepared = super().prepare(signed, **kwargs)
        if len(self.calls) == 2:
            self.second_prepared.set()
        return prepared

    def finish(self, prepared):  # type: ignore[no-untyped-def]
        if not self.finish_waited:
            self.finish_waited = True
            assert self.second_prepared.wait(5), "the next batch was not prepared meanwhile"
        return super().finish(prepared)


def test_the_next_batch_is_prepared_while_one_is_finished() -> None:
    """While a batch's signatures are checked and its later stages run, the intake is
    already decoding the next one, so the verifier is never without work."""
    admitter = SlowFinisher()
    intake = Intake(admitter, capacity=100, merge_limit=2)  # type: ignore[arg-type]
    intake.start()
    try:
        answers: list[list[pb.SubmissionResult]] = []
        banks = [
            threading.Thread(
                target=lambda b=b: answers.append(intake.submit(batch(2), sender=b, timeout=10))
            )
            for b in ("bank-a", "bank-b")
        ]
        for thread in banks:
            thread.start()
        for thread in banks:
            thread.join(10)
    finally:
        intake.stop()
    assert admitter.second_prepared.is_set()
    assert sorted(len(a) for a in answers) == [2, 2], "every bank heard back"


def test_a_failing_stage_fails_only_its_own_batch() -> None:
    class FailsFirst(RecordingAdmitter):
        def finish(self, prepared):  # type: ignore[no-untyped-def]
            if len(self.calls) == 1 or prepared[0] == 3:
                raise RuntimeError("expected a store, got a broken one")
            return super().finish(prepared)

    intake = Intake(FailsFirst(), capacity=100)  # type: ignore[arg-type]
    intake.start()
    try:
        with pytest.raises(RuntimeError, match="broken"):
            intake.submit(batch(3), sender="bank-a", timeout=5)
        assert len(intake.submit(batch(2), sender="bank-a", timeout=5)) == 2
    finally:
        intake.stop()
