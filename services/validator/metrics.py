"""What a validator exports to Prometheus (see docs/metrics.md for every metric).

A validator's metrics are read at scrape time from what it keeps anyway: the
engine's ``Counters``, the intake's and peers' stats, the verifier's totals, the
mempool's size and the chain's state. The only thing done as the ledger runs is one
``BlockObserver.on_commit`` per committed block (a counter and three histogram
observations), never anything per transaction.
"""

from __future__ import annotations

import time
from typing import Protocol

from prometheus_client import CollectorRegistry, Histogram

from ledger.block import Block
from ledger.chain import Chain
from ledger.consensus import Engine
from ledger.execute import Execution
from ledger.verifier import BatchVerifier
from services.common.config import NodeConfig
from services.common.metrics import LABELS, Families, MetricsEndpoint
from services.validator.admitted import AdmittedFirst
from services.validator.intake import Intake
from services.validator.loop import Driver
from services.validator.lsm_metrics import LiquidityObserver
from services.validator.mempool import Mempool
from services.validator.peers import Peers


class MeteredValidator(Protocol):
    """The parts of a running validator its metrics read (``ValidatorNode`` has them)."""

    config: NodeConfig
    driver: Driver
    chain: Chain
    engine: Engine
    intake: Intake
    mempool: Mempool
    peers: Peers
    verifier: BatchVerifier
    block_signatures: AdmittedFirst


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
        self._offsetting = Histogram(
            "straits_lsm_run_seconds",
            "Time the liquidity-saving mechanism took to choose its set, per block it ran in.",
            LABELS,
            registry=None,
            buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5),
        )
        self._histograms = (self._block_transactions, self._interval, self._latency,
                            self._offsetting)
        self._children = [h.labels(*labels) for h in self._histograms]

    def register(self, registry: CollectorRegistry) -> None:
        for histogram in self._histograms:
            registry.register(histogram)

    def on_commit(self, block: Block, execution: Execution) -> None:
        now = time.time()
        transactions, interval, latency, offsetting = self._children
        count = len(block.transactions)
        self.transactions += count
        transactions.observe(count)
        if self._last_commit is not None:  # the first block has no interval to measure
            interval.observe(now - self._last_commit)
        latency.observe(max(0.0, now - block.header.timestamp_ms / 1000))
        if execution.offsetting is not None:
            offsetting.observe(execution.offsetting.seconds)
        self._last_commit = now


def start_validator_metrics(node: MeteredValidator) -> MetricsEndpoint | None:
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
        _read_accounts(node, f)
        liquidity.read(f, state)
        _read_intake(node, f)
        _read_verifier(node, f)
        _read_peers(node, f)

    return MetricsEndpoint.start(node.config, read, observer.register)


def _read_accounts(node: MeteredValidator, f: Families) -> None:
    # One series per account with money: a network has tens of banks, not thousands, and
    # the regulator's dashboards need each bank's position and queued value. One pass
    # over the queues, so a scrape costs the queue's length once, not once per bank.
    state = node.chain.state
    balance = {(a,): v for a, v in state.balances.items()}
    queued_out = dict.fromkeys(balance, 0)
    queued_in = dict.fromkeys(balance, 0)
    for payer, queue in state.queues.items():
        for entry in queue:
            queued_out[(payer,)] = queued_out.get((payer,), 0) + entry.amount
            queued_in[(entry.payee,)] = queued_in.get((entry.payee,), 0) + entry.amount
    position = {k: v - queued_out.get(k, 0) + queued_in.get(k, 0) for k, v in balance.items()}
    for name, doc, values in (
        ("balance", "Settled balance of each account, in minor units.", balance),
        ("queued_out", "Value of each account's transfers waiting in its queue.", queued_out),
        ("queued_in", "Value queued by others to each account.", queued_in),
        ("position", "Each account's position: balance - queued out + queued in.", position),
    ):
        f.gauges(f"straits_ledger_account_{name}_minor_units", doc, ("account",), values)


def _read_consensus(node: MeteredValidator, f: Families) -> None:
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


def _read_intake(node: MeteredValidator, f: Families) -> None:
    stats = node.intake.stats
    f.gauge(
        "straits_intake_queued_transactions",
        "Transactions waiting for the admission thread.",
        stats.queued,
    )
    f.gauge(
        "straits_intake_capacity_transactions",
        "Transactions the intake queue holds before it refuses submissions.",
        node.intake.capacity,
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


def _read_verifier(node: MeteredValidator, f: Families) -> None:
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
    blocks = node.block_signatures
    f.counters(
        "straits_block_signatures_total",
        "Signatures of transactions in blocks built or validated: reused (checked at "
        "admission) or checked (not admitted here first).",
        ("source",),
        {("reused",): blocks.reused, ("checked",): blocks.verified},
    )


def _read_peers(node: MeteredValidator, f: Families) -> None:
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
