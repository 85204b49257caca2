"""What a load run sends: a seeded mix of payers, payees and amounts across all banks.

Each batch has one payer (a batch travels on that payer's connection, to its own
node or signed with its key), payees drawn from the other banks, and amounts small
enough that funded banks keep paying each other without queueing. A share of the
orders are deliberately bad (``bad_share``); their kind is drawn from the faults
the chosen path can carry (see ``clients.load.faults``). The same seed gives the
same sequence of orders.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.errors import expected
from wire.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Order:
    """One payment to make. ``fault`` is empty for a good one, else the fault it carries."""

    index: int
    payer: str
    payee: str
    amount: int
    fault: str = ""


class Workload:
    """Thread-safe source of order batches, reproducible from ``seed``."""

    def __init__(
        self,
        banks: Sequence[str],
        *,
        seed: int,
        bad_share: float = 0.0,
        faults: Sequence[str] = (),
        amounts: tuple[int, int] = (1, 100),
    ) -> None:
        if len(banks) < 2:
            raise ConfigError(expected("at least two banks to pay each other", list(banks)),
                              field="banks")
        if not 0.0 <= bad_share < 1.0:
            raise ConfigError(expected("a bad share in [0, 1)", bad_share), field="bad_share")
        if bad_share and not faults:
            raise ConfigError(expected("faults to draw bad orders from", faults), field="faults")
        self.banks = tuple(banks)
        self._rng = random.Random(seed)
        self._bad_share = bad_share
        self._faults = tuple(faults)
        self._amounts = amounts
        self._next = 0
        self._lock = threading.Lock()

    def batch(self, size: int) -> list[Order]:
        with self._lock:
            payer = self._rng.choice(self.banks)
            others = [b for b in self.banks if b != payer]
            orders = []
            for _ in range(size):
                fault = ""
                if self._bad_share and self._rng.random() < self._bad_share:
                    fault = self._rng.choice(self._faults)
                orders.append(Order(self._next, payer, self._rng.choice(others),
                                    self._rng.randint(*self._amounts), fault))
                self._next += 1
            return orders


class Prepared:
    """``workload`` with ``batches`` made ahead: handed out first, in order, to a caller
    asking for a batch of their size; then, or for another size, made as asked."""

    def __init__(self, workload: Workload, batches: Sequence[Sequence[Order]]) -> None:
        self._workload = workload
        self._ready = deque(batches)
        self._ready_lock = threading.Lock()

    def batch(self, size: int) -> list[Order]:
        with self._ready_lock:
            if self._ready and len(self._ready[0]) == size:
                return list(self._ready.popleft())
        return self._workload.batch(size)
