"""Scheduling: when the next batch goes out, in an open or a closed loop.

Open loop (``--rate``): batches are due at the target rate from the start,
whatever the answers do; a batch is handed to ``dispatch``, which refuses it when
every call slot is busy. A refused batch stays due (the loop catches up when a slot
frees) but the backlog is capped at one second: what falls further behind is
dropped and counted as missed, so a network that cannot keep up shows as a lower
offered rate per second, not as an ever-growing burst.

Closed loop (``--concurrency``): N workers each send a batch and wait until it is
final, then send the next, so N batches are always in flight.

Both stop at the deadline, at the count, or when ``stop`` is set (Ctrl-C). Time
comes from a ``Clock`` so tests can drive the schedule without sleeping.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ledger.errors import expected
from wire.errors import ConfigError

# How long the open loop waits before asking again for a free slot.
_RETRY_S = 0.001


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The monotonic clock; sleeping wakes early when ``stop`` is set."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)


@dataclass(frozen=True)
class Bounds:
    """Every run ends: by ``deadline`` (on the run's clock) and after ``count`` payments."""

    deadline: float
    count: int


@dataclass
class Offered:
    """Payments the open loop handed out, per second from its start, and those it missed."""

    per_second: list[int] = field(default_factory=list)
    missed: int = 0

    def add(self, second: int, n: int) -> None:
        while len(self.per_second) <= second:
            self.per_second.append(0)
        self.per_second[second] += n

    def short_seconds(self, rate: float, skip: int = 0, tolerance: float = 0.9) -> list[int]:
        """Whole seconds after the first ``skip`` (the warm-up) whose offered rate fell
        below ``tolerance`` of the target."""
        whole = self.per_second[:-1]  # the last second is cut short by the deadline
        return [i for i, n in enumerate(whole) if i >= skip and n < tolerance * rate]


class OpenLoop:
    def __init__(self, rate: float, batch: int) -> None:
        if rate <= 0 or batch < 1:
            raise ConfigError(expected("rate > 0 and batch >= 1", (rate, batch)), field="rate")
        self.rate = rate
        self.batch = batch

    def run(self, dispatch: Callable[[int], bool], clock: Clock, bounds: Bounds,
            stop: threading.Event) -> Offered:
        offered = Offered()
        start = origin = clock.now()
        sent = 0
        while not stop.is_set() and sent < bounds.count:
            now = clock.now()
            if now >= bounds.deadline:
                break
            # Batch k is due at the start of its slot, k * batch / rate after the origin.
            batches_due = math.floor((now - origin) * self.rate / self.batch + 1e-9) + 1
            due = min(batches_due * self.batch, bounds.count) - sent
            if due > self.rate + self.batch:
                skipped = due - int(self.rate)
                origin += skipped / self.rate
                offered.missed += skipped
                due -= skipped
            waiting_for_slot = False
            while due > 0 and due >= min(self.batch, bounds.count - sent):
                n = min(self.batch, bounds.count - sent)
                if not dispatch(n):
                    waiting_for_slot = True
                    break
                sent += n
                due -= n
                offered.add(int(now - start), n)
            if sent >= bounds.count:
                break
            next_due = origin + sent / self.rate
            pause = _RETRY_S if waiting_for_slot else next_due - clock.now()
            clock.sleep(max(0.0, min(pause, bounds.deadline - clock.now())))
        return offered


class ClosedLoop:
    def __init__(self, concurrency: int, batch: int) -> None:
        if concurrency < 1 or batch < 1:
            raise ConfigError(expected("concurrency >= 1 and batch >= 1", (concurrency, batch)),
                              field="concurrency")
        self.concurrency = concurrency
        self.batch = batch

    def run(self, cycle: Callable[[int], None], clock: Clock, bounds: Bounds,
            stop: threading.Event) -> None:
        """``cycle(n)`` sends ``n`` payments and returns once they are final."""
        lock = threading.Lock()
        claimed = 0

        def claim() -> int:
            nonlocal claimed
            with lock:
                if stop.is_set() or claimed >= bounds.count or clock.now() >= bounds.deadline:
                    return 0
                n = min(self.batch, bounds.count - claimed)
                claimed += n
                return n

        def worker() -> None:
            while n := claim():
                cycle(n)

        workers = [threading.Thread(target=worker, name=f"load-worker-{i}", daemon=True)
                   for i in range(self.concurrency)]
        for w in workers:
            w.start()
        for w in workers:
            # Short joins keep the calling (main) thread able to take a Ctrl-C.
            while w.is_alive():
                w.join(timeout=0.2)
