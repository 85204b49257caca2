"""What each kind of node exports to Prometheus (see docs/metrics.md for every metric).

A validator's metrics are read at scrape time from what it keeps anyway: the
engine's ``Counters``, the intake's and peers' stats, the verifier's totals, the
mempool's size and the chain's state. The only thing done as the ledger runs is one
``BlockObserver.on_commit`` per committed block (a counter and three histogram
observations), never anything per transaction.

A bank's or the central bank's node exports how far it has followed the chain and
what became of what it signed, counted in its own SQLite file on a separate
read-only connection, so a scrape never waits for, or holds up, the node's writes.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram
from straits.bank.v1 import bank_pb2 as bank_pb

from ledger.block import Block
from ledger.execute import Execution
from services.lsm_metrics import LiquidityObserver
from services.metrics import LABELS, Families, MetricsEndpoint
from services.node.outbox import PENDING

if TYPE_CHECKING:
    from services.node.participant import ParticipantNode
    from services.node.validator import ValidatorNode

_STATUS_PREFIX = "PAYMENT_STATUS_"
_DIRECTIONS = {bank_pb.DIRECTION_OUTGOING: "outgoing", bank_pb.DIRECTION_INCOMING: "incoming"}
_WAITING = (bank_pb.PAYMENT_STATUS_PENDING, bank_pb.PAYMENT_STATUS_QUEUED)
_FINAL = (
    bank_pb.PAYMENT_STATUS_SETTLED,
    bank_pb.PAYMENT_STATUS_REJECTED,
    bank_pb.PAYMENT_STATUS_CANCELLED,
    bank_pb.PAYMENT_STATUS_EXPIRED,
)


class BlockObserver:
    """Counts committed transactions and times blocks: called once per committed block."""

    def __init__(self, labels: tuple[str, str]) -> None:
        self.transactions = 0
        self._last_commit: float | None = None
        self._block_transactions = Histogram(
            "straits_ledger_block_transactions",
            "Transactions per committed block.",
            LABELS,
            registry=None,
            buckets=(0, 1, 10, 50, 100, 250, 500, 1000, 2000),
        )
        self._interval = Histogram(
            "straits_ledger_block_interval_seconds",
            "Time between two blocks committed by this validator.",
            LABELS,
            registry=None,
            buckets=(0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30),
        )
        self._latency = Histogram(
            "straits_consensus_commit_latency_seconds",
            "From the block's timestamp (when its proposer built it) to its commit here.",
            LABELS,
            registry=None,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self._children = [
            h.labels(*labels) for h in (self._block_transactions, self._interval, self._latency)
        ]

    def register(self, registry: CollectorRegistry) -> None:
        for histogram in (self._block_transactions, self._interval, self._latency):
            registry.register(histogram)

    def on_commit(self, block: Block, execution: Execution) -> None:
        now = time.time()
        transactions, interval, latency = self._children
        count = len(block.transactions)
        self.transactions += count
        transactions.observe(count)
        if self._last_commit is not None:  # the first block has no interval to measure
            interval.observe(now - self._last_commit)
        latency.observe(max(0.0, now - block.header.timestamp_ms / 1000))
        self._last_commit = now


def start_validator_metrics(node: ValidatorNode) -> MetricsEndpoint | None:
    """Serves ``node``'s metrics; call before the node loop starts so no block is missed."""
    if not node.config.metrics_port:
        return None
    observer = BlockObserver((node.config.id, node.config.kind.value))
    node.driver.add_listener(observer.on_commit)
    liquidity = LiquidityObserver()
    node.driver.add_listener(liquidity.on_commit)

    def read(f: Families) -> None:
        _read_consensus(node, f)
        state = node.chain.state
        f.gauge(
            "straits_ledger_height",
            "Height of the last block this validator committed.",
            node.chain.head().height,
        )
        f.counter(
            "straits_ledger_committed_transactions_total",
            "Transactions in blocks this validator committed since it started.",
            observer.transactions,
        )
        f.gauge(
            "straits_ledger_supply_minor_units",
            "Money in circulation (issued less redeemed), in minor units.",
            state.supply,
        )
        f.counter(
            "straits_ledger_issued_minor_units_total",
            "Money ever issued by the central bank, in minor units.",
            state.issued,
        )
        f.counter(
            "straits_ledger_redeemed_minor_units_total",
            "Money ever redeemed to the central bank, in minor units.",
            state.redeemed,
        )
        f.gauge(
            "straits_ledger_queued_transfers",
            "Transfers waiting in payers' queues.",
            sum(len(q) for q in state.queues.values()),
        )
        f.gauge(
            "straits_mempool_transactions",
            "Admitted transactions waiting for a block.",
            len(node.mempool),
        )
        f.gauge(
            "straits_mempool_capacity_transactions",
            "Transactions the mempool holds before it refuses more.",
            node.mempool.capacity,
        )
        liquidity.read(f, state)
        _read_intake(node, f)
        _read_verifier(node, f)
        _read_peers(node, f)

    return MetricsEndpoint.start(node.config, read, observer.register)


def _read_consensus(node: ValidatorNode, f: Families) -> None:
    c = node.engine.counters
    f.gauge("straits_consensus_height", "Height the consensus engine is deciding.", c.height)
    f.gauge("straits_consensus_round", "Round of the height being decided (0: first).", c.round)
    f.counter(
        "straits_consensus_round_changes_total",
        "Rounds abandoned for a later one (timeouts, bad or missing proposals).",
        c.round_changes,
    )
    f.counter(
        "straits_consensus_proposals_made_total",
        "Blocks this validator proposed.",
        c.proposals_made,
    )
    f.counters(
        "straits_consensus_proposals_rejected_total",
        "Proposals from others this validator refused, by reason.",
        ("reason",),
        {(k,): v for k, v in c.proposals_rejected.items()},
    )
    f.counters(
        "straits_consensus_messages_rejected_total",
        "Consensus messages refused, by reason.",
        ("reason",),
        {(k,): v for k, v in c.messages_rejected.items()},
    )
    f.counter(
        "straits_consensus_duplicate_messages_total",
        "Consensus messages received more than once.",
        c.duplicates,
    )
    f.counter(
        "straits_consensus_seals_signed_total",
        "Commit seals this validator signed.",
        c.seals_signed,
    )
    f.counter(
        "straits_consensus_blocks_committed_total",
        "Blocks committed, decided here or synced.",
        c.blocks_committed,
    )
    f.counter(
        "straits_consensus_blocks_synced_total",
        "Blocks taken from peers to catch up.",
        c.blocks_synced,
    )
    f.counter(
        "straits_consensus_heartbeat_blocks_total",
        "Blocks made with no transactions waiting, to show the chain is alive.",
        c.heartbeat_blocks,
    )


def _read_intake(node: ValidatorNode, f: Families) -> None:
    stats = node.intake.stats
    f.gauge(
        "straits_intake_queued_transactions",
        "Transactions waiting for the admission thread.",
        stats.queued,
    )
    f.gauge(
        "straits_intake_capacity_transactions",
        "Transactions the intake queue holds before it refuses submissions.",
        node.settings.intake_capacity,
    )
    f.counter(
        "straits_intake_admitted_batches_total",
        "Batches of submitted or shared transactions admission has checked.",
        stats.admitted_batches,
    )
    f.counter(
        "straits_intake_refused_total",
        "Submissions refused because the intake queue was full (clients retry).",
        stats.submissions_refused,
    )
    f.counter(
        "straits_intake_dropped_total",
        "Transactions shared by peers dropped because the intake queue was full.",
        stats.shared_dropped,
    )


def _read_verifier(node: ValidatorNode, f: Families) -> None:
    stats = node.verifier.stats()
    f.counter(
        "straits_verifier_signatures_verified_total", "Signature checks performed.", stats.verified
    )
    f.counter(
        "straits_verifier_cache_hits_total",
        "Signature verdicts answered from the cache.",
        stats.cache_hits,
    )
    f.counter(
        "straits_verifier_failures_total",
        "Signatures found invalid (or whose signer has no key).",
        stats.failures,
    )


def _read_peers(node: ValidatorNode, f: Families) -> None:
    links = node.peers.links
    f.counters(
        "straits_peer_messages_delivered_total",
        "Consensus messages delivered to each peer.",
        ("peer",),
        {(p,): link.stats.delivered for p, link in links.items()},
    )
    f.counters(
        "straits_peer_failed_calls_total",
        "Calls to each peer that failed (peer down or unreachable).",
        ("peer",),
        {(p,): link.stats.failed_calls for p, link in links.items()},
    )
    f.counters(
        "straits_peer_messages_dropped_total",
        "Messages for each peer dropped because its send queue was full.",
        ("peer",),
        {(p,): link.stats.dropped for p, link in links.items()},
    )


def start_participant_metrics(node: ParticipantNode, *, payments: bool) -> MetricsEndpoint | None:
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
        self._lock = threading.Lock()

    def read(self, conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
        with self._lock:
            rows = conn.execute(
                "SELECT seq, direction, payment FROM events WHERE seq>? ORDER BY seq LIMIT ?",
                (self._seq, self.BATCH),
            ).fetchall()
            for seq, direction, data in rows:
                status = bank_pb.Payment.FromString(data).status
                if status in _FINAL:
                    self.counts[(_status(status), _DIRECTIONS[direction])] += 1
                self._seq = seq
            return dict(self.counts)


def _read_payments(conn: sqlite3.Connection, tally: FinalTally, f: Families) -> None:
    # Only payments still moving are counted in the table (a range of the status index);
    # every status and direction is exported, 0 included, so no series appears from nowhere.
    waiting = dict.fromkeys([(_status(s), d) for s in _WAITING for d in _DIRECTIONS.values()], 0)
    for status, direction, count in conn.execute(
        "SELECT status, direction, count(*) FROM payments WHERE status IN (?, ?)"
        " GROUP BY status, direction",
        _WAITING,
    ):
        waiting[(_status(status), _DIRECTIONS[direction])] = count
    f.gauges(
        "straits_bank_payments",
        "This bank's payments not yet final: pending (not in a block) or queued.",
        ("status", "direction"),
        waiting,
    )
    f.counters(
        "straits_bank_payments_finalised_total",
        "Payments that reached a final status since the node started.",
        ("status", "direction"),
        tally.read(conn),
    )


def _status(status: int) -> str:
    return bank_pb.PaymentStatus.Name(status).removeprefix(_STATUS_PREFIX).lower()
