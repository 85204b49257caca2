"""What a bank's or the central bank's node exports to Prometheus (docs/metrics.md).

Such a node exports how far it has followed the chain and what became of what it
signed, counted in its own SQLite file on a separate read-only connection, so a
scrape never waits for, or holds up, the node's writes.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from typing import Protocol

from straits.bank.v1 import bank_pb2 as bank_pb

from services.common.config import NodeConfig
from services.common.metrics import Families, MetricsEndpoint
from services.participant.outbox import PENDING


class MeteredParticipant(Protocol):
    """What a participant node's metrics read (``ParticipantNode`` has it)."""

    config: NodeConfig

    @property
    def height(self) -> int: ...


_STATUS_PREFIX = "PAYMENT_STATUS_"
_DIRECTIONS = {bank_pb.DIRECTION_OUTGOING: "outgoing", bank_pb.DIRECTION_INCOMING: "incoming"}
_WAITING = (bank_pb.PAYMENT_STATUS_PENDING, bank_pb.PAYMENT_STATUS_QUEUED)
_FINAL = (
    bank_pb.PAYMENT_STATUS_SETTLED,
    bank_pb.PAYMENT_STATUS_REJECTED,
    bank_pb.PAYMENT_STATUS_CANCELLED,
    bank_pb.PAYMENT_STATUS_EXPIRED,
)


def start_participant_metrics(
    node: MeteredParticipant, *, payments: bool
) -> MetricsEndpoint | None:
    """Serves the central bank's node metrics, or a bank's (``payments``: with its payments)."""
    if not node.config.metrics_port:
        return None
    uri = f"file:{node.config.data_dir / 'node.db'}?mode=ro"
    tally = FinalTally(uri) if payments else None

    def read(f: Families) -> None:
        f.gauge(
            "straits_participant_followed_height",
            "Height of the last block this node has checked and stored.",
            node.height,
        )
        with closing(sqlite3.connect(uri, uri=True)) as conn:
            [(pending,)] = conn.execute("SELECT count(*) FROM outbox WHERE state=?", (PENDING,))
            f.gauge(
                "straits_participant_pending_transactions",
                "Transactions this node signed that no block has carried yet.",
                pending,
            )
            if tally is not None:
                _read_payments(conn, tally, f)

    return MetricsEndpoint.start(node.config, read)


class FinalTally:
    """Payments that reached a final status since the node started, by status and direction.

    Counted from the ``events`` table a followed block appends to, a cursor's worth at a
    time: counting the whole ``payments`` table at each scrape would cost a scan of every
    payment the bank ever made.
    """

    BATCH = 50_000

    def __init__(self, uri: str) -> None:
        with closing(sqlite3.connect(uri, uri=True)) as conn:
            [(self._seq,)] = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events")
        self.counts = dict.fromkeys(
            [(_status(s), d) for s in _FINAL for d in _DIRECTIONS.values()], 0
        )
        self.amounts = dict(self.counts)
        self._lock = threading.Lock()

    def read(
        self, conn: sqlite3.Connection
    ) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        """Counts and values (minor units) by status and direction."""
        with self._lock:
            rows = conn.execute(
                "SELECT seq, direction, payment FROM events WHERE seq>? ORDER BY seq LIMIT ?",
                (self._seq, self.BATCH),
            ).fetchall()
            for seq, direction, data in rows:
                payment = bank_pb.Payment.FromString(data)
                if payment.status in _FINAL:
                    key = (_status(payment.status), _DIRECTIONS[direction])
                    self.counts[key] += 1
                    self.amounts[key] += payment.amount
                self._seq = seq
            return dict(self.counts), dict(self.amounts)


def _read_payments(conn: sqlite3.Connection, tally: FinalTally, f: Families) -> None:
    # Only payments still moving are counted in the table (a range of the status index);
    # every status and direction is exported, 0 included, so no series appears from nowhere.
    waiting = dict.fromkeys([(_status(s), d) for s in _WAITING for d in _DIRECTIONS.values()], 0)
    waiting_value = dict(waiting)
    for status, direction, count, value in conn.execute(
        "SELECT status, direction, count(*), sum(amount) FROM payments WHERE status IN (?, ?)"
        " GROUP BY status, direction",
        _WAITING,
    ):
        waiting[(_status(status), _DIRECTIONS[direction])] = count
        waiting_value[(_status(status), _DIRECTIONS[direction])] = value or 0
    f.gauges(
        "straits_bank_payments",
        "This bank's payments not yet final: pending (not in a block) or queued.",
        ("status", "direction"),
        waiting,
    )
    f.gauges(
        "straits_bank_payments_minor_units",
        "Value of this bank's payments not yet final, in minor units.",
        ("status", "direction"),
        waiting_value,
    )
    counts, amounts = tally.read(conn)
    f.counters(
        "straits_bank_payments_finalised_total",
        "Payments that reached a final status since the node started.",
        ("status", "direction"),
        counts,
    )
    f.counters(
        "straits_bank_payments_finalised_minor_units_total",
        "Value of the payments that reached a final status since the node started.",
        ("status", "direction"),
        amounts,
    )


def _status(status: int) -> str:
    return bank_pb.PaymentStatus.Name(status).removeprefix(_STATUS_PREFIX).lower()
