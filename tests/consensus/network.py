"""A seeded, virtual-time network: drop, delay, duplicate, reorder, partition and heal.

Every envelope gets a delivery tick drawn from the run's ``random.Random``;
different delays reorder messages, a duplicate is a second envelope, a cut
link or a drop loses it. Nothing reads a clock, so a seed replays exactly.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Faults:
    drop: float = 0.0
    duplicate: float = 0.0
    min_delay: int = 1
    max_delay: int = 1


@dataclass(order=True)
class Envelope:
    deliver_at: int
    seq: int
    sender: str = field(compare=False)
    receiver: str = field(compare=False)
    kind: str = field(compare=False)  # "consensus", "fetch" or "blocks"
    payload: object = field(compare=False)


class SimNetwork:
    def __init__(self, rng: random.Random, faults: Faults = Faults()) -> None:
        self.rng = rng
        self.faults = faults
        self._queue: list[Envelope] = []
        self._seq = 0
        self._groups: list[frozenset[str]] | None = None
        self.sent = 0
        # Message processors by content: each sees (sender, receiver, kind, payload); True drops.
        self.filters: list[Callable[[str, str, str, object], bool]] = []

    def partition(self, groups: Iterable[Iterable[str]]) -> None:
        self._groups = [frozenset(g) for g in groups]

    def heal(self) -> None:
        self._groups = None

    def connected(self, a: str, b: str) -> bool:
        return self._groups is None or any(a in g and b in g for g in self._groups)

    def send(self, now: int, sender: str, receiver: str, kind: str, payload: object) -> None:
        if not self.connected(sender, receiver) or self.rng.random() < self.faults.drop:
            return
        if any(dropped(sender, receiver, kind, payload) for dropped in self.filters):
            return
        copies = 2 if self.rng.random() < self.faults.duplicate else 1
        for _ in range(copies):
            delay = self.rng.randint(self.faults.min_delay, self.faults.max_delay)
            self._seq += 1
            self.sent += 1
            heapq.heappush(
                self._queue, Envelope(now + delay, self._seq, sender, receiver, kind, payload)
            )

    def due(self, now: int) -> list[Envelope]:
        out = []
        while self._queue and self._queue[0].deliver_at <= now:
            envelope = heapq.heappop(self._queue)
            # A partition also cuts what was already on the wire.
            if self.connected(envelope.sender, envelope.receiver):
                out.append(envelope)
        return out
