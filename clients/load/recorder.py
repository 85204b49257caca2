"""What happened to every payment of a run: good ones become ``Sample``s, bad ones verdicts.

The recorder takes each submission's answers, asks the finality tracker to call
back when an accepted transaction's block is committed, and keeps:
- a ``Sample`` per good payment (submission to finality, or refused with why);
- for deliberately bad ones, whether each was refused (at submission, or with a
  REJECTED receipt) and, if not, what became of it instead.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from clients.load.finality import SETTLED, Finality, FinalityTracker
from clients.load.report import Sample
from clients.load.submitters import Submitted

UNFINISHED = "UNFINISHED"


@dataclass
class BadVerdicts:
    """Deliberately bad payments: how many of each fault were sent, refused, and not."""

    sent: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)  # "fault -> STATUS: reason"
    not_refused: Counter[str] = field(default_factory=Counter)  # "fault -> what happened"

    def to_dict(self) -> dict[str, object]:
        return {
            "sent": sum(self.sent.values()),
            "refused": sum(self.refused.values()),
            "not_refused": sum(self.not_refused.values()),
            "by_fault": {f: {"sent": n, "refused": self.refused[f]} for f, n in self.sent.items()},
            "refusals": dict(self.refusals),
            "not_refused_detail": dict(self.not_refused),
        }


@dataclass(frozen=True)
class Progress:
    sent: int
    settled: int
    errors: int
    latencies_ms: list[float]


class Recorder:
    def __init__(self, tracker: FinalityTracker, clock: Callable[[], float]) -> None:
        self._tracker = tracker
        self._clock = clock
        self._lock = threading.Lock()
        self.samples: list[Sample] = []
        self.bad = BadVerdicts()
        self._sent = 0
        self._open: dict[bytes, tuple[Submitted, float]] = {}

    def record(self, sent_at: float, answers: Sequence[Submitted],
               on_final: Callable[[], None] | None = None) -> None:
        """Take one batch's answers; ``on_final`` runs once all of them are final."""
        accepted = [a for a in answers if a.accepted]
        remaining = [len(accepted)]
        now = self._clock()
        with self._lock:
            self._sent += len(answers)
            for answer in answers:
                if answer.order.fault:
                    self.bad.sent[answer.order.fault] += 1
                if answer.accepted:
                    self._open[answer.transaction_id] = (answer, sent_at)
                else:
                    self._refused(answer, sent_at, now)

        def final(done: Finality) -> None:
            self._finished(done)
            with self._lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last and on_final is not None:
                on_final()

        for answer in accepted:
            self._tracker.expect(answer.transaction_id, final)
        if not accepted and on_final is not None:
            on_final()

    def _refused(self, answer: Submitted, sent_at: float, now: float) -> None:
        why = f"{answer.status}: {answer.reason}" if answer.reason else answer.status
        fault = answer.order.fault
        if fault:
            self.bad.refused[fault] += 1
            self.bad.refusals[f"{fault} -> {why}"] += 1
        else:
            self.samples.append(Sample(sent_at, now, answer.status, answer.reason))

    def _finished(self, done: Finality) -> None:
        with self._lock:
            entry = self._open.pop(done.transaction_id, None)
            if entry is None:
                return
            answer, sent_at = entry
            fault = answer.order.fault
            if fault and done.status == SETTLED:
                self.bad.not_refused[f"{fault} -> {done.status}"] += 1
            elif fault:
                self.bad.refused[fault] += 1
                self.bad.refusals[f"{fault} -> {done.status}: {done.reason}"] += 1
            else:
                self.samples.append(Sample(sent_at, done.received, done.status, done.reason))

    @property
    def open(self) -> int:
        with self._lock:
            return len(self._open)

    def close(self) -> None:
        """End of run: what is still open never became final in the time allowed."""
        now = self._clock()
        with self._lock:
            left, self._open = self._open, {}
            for tx_id, (answer, sent_at) in left.items():
                self._tracker.forget(tx_id)
                fault = answer.order.fault
                queued = self._tracker.queued(tx_id)
                what = "QUEUED" if queued else UNFINISHED
                if fault:
                    self.bad.not_refused[f"{fault} -> {what}"] += 1
                else:
                    self.samples.append(Sample(sent_at, now, what, "not final when the run ended"))

    def progress(self) -> Progress:
        with self._lock:
            settled = [(s.finished - s.submitted) * 1000.0 for s in self.samples
                       if s.status == SETTLED]
            errors = len(self.samples) - len(settled)
            return Progress(self._sent, len(settled), errors, settled)
