"""Scheduling stories: the open loop holds its rate on a clock it does not control, says
when it cannot, and the closed loop keeps exactly N batches in flight."""

from __future__ import annotations

import itertools
import threading

import pytest

from clients.load.driver import Bounds, ClosedLoop, OpenLoop


class SteppingClock:
    """A clock that moves only when the loop sleeps: no real time passes in these tests."""

    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 1e-6)


def test_an_open_loop_offers_its_rate_every_second_until_the_deadline() -> None:
    clock = SteppingClock()
    dispatched: list[tuple[float, int]] = []

    def dispatch(n: int) -> bool:
        dispatched.append((clock.now(), n))
        return True

    offered = OpenLoop(rate=200, batch=10).run(
        dispatch, clock, Bounds(deadline=clock.t + 5.0, count=10_000), threading.Event())
    assert offered.per_second[:5] == [200] * 5, f"offered per second: {offered.per_second}"
    assert offered.missed == 0 and offered.short_seconds(200) == []
    assert {n for _, n in dispatched} == {10}, "every batch should carry --batch payments"
    gaps = {round(b[0] - a[0], 6) for a, b in itertools.pairwise(dispatched)}
    assert gaps == {0.05}, f"batches of 10 at 200/s should leave every 50 ms, left at {gaps}"


def test_an_open_loop_stops_at_its_count_with_a_short_last_batch() -> None:
    clock = SteppingClock()
    sizes: list[int] = []
    OpenLoop(rate=100, batch=7).run(lambda n: sizes.append(n) is None, clock,
                                    Bounds(deadline=clock.t + 60.0, count=30), threading.Event())
    assert sizes == [7, 7, 7, 7, 2]
    assert clock.t < 1000.0 + 1.0, "30 payments at 100/s should take under a second"


def test_an_open_loop_that_cannot_get_a_call_slot_reports_the_rate_it_did_offer() -> None:
    clock = SteppingClock()
    busy_until = [0.0]

    def dispatch(n: int) -> bool:
        # One call slot, and every call holds it for 50 ms: at most 20 calls a second.
        if clock.now() < busy_until[0]:
            return False
        busy_until[0] = clock.now() + 0.05
        return True

    offered = OpenLoop(rate=100, batch=1).run(
        dispatch, clock, Bounds(deadline=clock.t + 4.0, count=10_000), threading.Event())
    assert all(n <= 21 for n in offered.per_second), f"offered: {offered.per_second}"
    assert offered.short_seconds(100) == [0, 1, 2], "every whole second fell short of 100/s"
    assert offered.missed > 0, "a backlog beyond one second should be dropped and counted"


def test_a_stopped_open_loop_sends_nothing_more() -> None:
    clock, stop = SteppingClock(), threading.Event()
    sent = []

    def dispatch(n: int) -> bool:
        sent.append(n)
        if len(sent) == 3:
            stop.set()  # Ctrl-C arrives after the third batch
        return True

    OpenLoop(rate=50, batch=1).run(dispatch, clock, Bounds(clock.t + 10, 1000), stop)
    assert len(sent) == 3


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_closed_loop_keeps_n_batches_in_flight_and_no_more(concurrency: int) -> None:
    clock = SteppingClock()
    lock = threading.Lock()
    in_flight, most, cycles = [0], [0], []
    # Every cycle waits until all N are in flight at once: fewer than N would time out.
    together = threading.Barrier(concurrency, timeout=10)

    def cycle(n: int) -> None:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
            cycles.append(n)
        together.wait()
        with lock:
            in_flight[0] -= 1

    ClosedLoop(concurrency, batch=5).run(cycle, clock, Bounds(clock.t + 60, 5 * 3 * concurrency),
                                         threading.Event())
    assert most[0] == concurrency, f"expected {concurrency} in flight at most, saw {most[0]}"
    assert sum(cycles) == 15 * concurrency and set(cycles) == {5}
