"""The node loop: the one thread where the clock, the network and the QBFT engine meet.

Every input — a peer's message, a tick of the clock, new transactions in the
mempool, a block fetched for catch-up, a proposal whose batching delay is over —
becomes a typed event on one queue. The loop takes events one at a time, hands
each to the engine and gives the ``Ready`` it returns to the consensus ``Runner``
(``ledger/consensus/runner.py``), the same one the simulated network runs: it
persists the last-signed record, sends, commits through ``Chain.commit``, starts
a fetch, asks for a proposal, and advances after a commit. Because only this
thread touches the engine and the chain, neither needs a lock.

A proposal is not built the moment the engine asks: it waits until
``block_interval`` has passed since the last commit or a full block's worth of
transactions is waiting, so blocks carry batches rather than single payments.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ledger.block import Block
from ledger.chain import Chain, CommitListener
from ledger.consensus import BuildProposal, Engine, FetchBlocks, Ready, Runner
from ledger.execute import Execution
from ledger.store import Store
from services.validator.mempool import Mempool
from services.validator.peers import Peers

log = logging.getLogger(__name__)


# --- the events the loop takes, one at a time ---------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    """The engine's first event, queued before anything can deliver a message to it."""


@dataclass(frozen=True, slots=True)
class Stop:
    pass


@dataclass(frozen=True, slots=True)
class Tick:
    pass


@dataclass(frozen=True, slots=True)
class TransactionsArrived:
    """The mempool gained transactions."""


@dataclass(frozen=True, slots=True)
class MessageArrived:
    data: bytes  # an encoded consensus message, as a peer sent it


@dataclass(frozen=True, slots=True)
class BlockFetched:
    block: Block  # a committed block a sync worker brought, not yet checked


@dataclass(frozen=True, slots=True)
class BuildDue:
    """The batching delay of a proposal the engine asked for is over."""


Event = Start | Stop | Tick | TransactionsArrived | MessageArrived | BlockFetched | BuildDue


@dataclass(frozen=True)
class Timing:
    tick_seconds: float
    block_interval_seconds: float


class Driver:
    def __init__(
        self,
        *,
        engine: Engine,
        chain: Chain,
        store: Store,
        mempool: Mempool,
        peers: Peers,
        timing: Timing,
        decode_block: Callable[[bytes], Block],
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._chain = chain
        self._mempool = mempool
        self._peers = peers
        self._timing = timing
        self._decode_block = decode_block
        self._clock = clock  # block timestamps only
        self._monotonic = monotonic  # intervals: immune to the wall clock being stepped
        self._runner = Runner(
            engine,
            store=store,
            transport=_Transport(peers, self._start_fetch),
            chain=chain,
            proposer=_Proposer(self),
        )
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._events.put(Start())
        self._pending_build: BuildProposal | None = None
        self._round_seen = 0
        self._last_commit = monotonic()
        self._build_timer_armed = False
        self.failed = threading.Event()
        self._fetch_lock = threading.Lock()
        self._fetch_running = False
        self._fetch_next: FetchBlocks | None = None
        self._stopped = threading.Event()
        self._loop = threading.Thread(target=self._run, name="node-loop", daemon=True)
        self._ticker = threading.Thread(target=self._tick, name="ticker", daemon=True)
        # First of the chain's listeners: the mempool is clean before anyone hears of the block.
        chain.add_listener(self._committed)

    # --- life cycle ------------------------------------------------------------------

    def add_listener(self, listener: CommitListener) -> None:
        """Hear of every committed block; a listener that fails is logged, not fatal."""
        self._chain.add_listener(_guarded(listener))

    def start(self) -> None:
        self._loop.start()
        self._ticker.start()

    def stop(self) -> None:
        self._stopped.set()
        self._events.put(Stop())
        self._loop.join(timeout=5)
        self._ticker.join(timeout=5)

    # --- inputs, from any thread -----------------------------------------------------

    def deliver(self, message: bytes) -> None:
        self._events.put(MessageArrived(message))

    def transactions_available(self) -> None:
        self._events.put(TransactionsArrived())

    @property
    def engine(self) -> Engine:
        return self._engine

    # --- the loop --------------------------------------------------------------------

    def _tick(self) -> None:
        while not self._stopped.wait(self._timing.tick_seconds):
            self._events.put(Tick())

    def _run(self) -> None:
        while True:
            event = self._events.get()
            if isinstance(event, Stop):
                return
            try:
                self._handle(event)
            except Exception:
                # The engine and the chain may now disagree with the store (a block decided
                # but not written, a signature made but not recorded): going on could stall
                # the height for good or sign twice. Stop, as a crash would; a restart
                # resumes from the store.
                log.critical(
                    "node loop: event %s failed; the node stops",
                    type(event).__name__,
                    exc_info=True,
                )
                self.failed.set()
                return

    def _handle(self, event: Event) -> None:
        engine = self._engine
        match event:
            case MessageArrived(data):
                started = time.perf_counter()
                ready = engine.receive(data)
                spent = time.perf_counter() - started
                if spent > 0.05:
                    log.debug(
                        "a consensus message took %.1f ms (round %d)", spent * 1000, engine.round
                    )
            case Tick():
                ready = engine.tick()
            case TransactionsArrived():
                ready = engine.transactions_available()
            case BlockFetched(block):
                ready = engine.synced(block)
            case BuildDue():
                block = self._build_if_due()
                ready = engine.propose(block) if block is not None else Ready()
            case Start():
                ready = engine.start()
            case _:
                raise ValueError(f"expected a known event, got {event!r}")
        if engine.round != self._round_seen:
            self._round_seen = engine.round
            if engine.round:
                counters = engine.counters
                log.info(
                    "height %d moved to round %d; rejected so far: proposals %s, messages %s",
                    engine.height,
                    engine.round,
                    counters.proposals_rejected,
                    counters.messages_rejected,
                )
        self._runner.carry_out(ready)
        if self._pending_build is not None and isinstance(event, TransactionsArrived | Tick):
            block = self._build_if_due()
            if block is not None:
                self._runner.propose(block)

    def _committed(self, block: Block, execution: Execution) -> None:
        """After ``Chain.commit``: what the block carried leaves the mempool, timers restart."""
        log.debug(
            "committed %d (round %d, %d transactions)",
            block.height,
            block.header.round,
            len(block.transactions),
        )
        self._mempool.remove(t.id for t in block.transactions)
        self._mempool.prune_expired(block.height + 1)
        self._last_commit = self._monotonic()
        if self._pending_build is not None and self._pending_build.height <= block.height:
            self._pending_build = None

    # --- proposals -------------------------------------------------------------------

    def _build(self, request: BuildProposal) -> Block | None:
        """The engine asks for a block: build it once it is due, now or on a later event."""
        self._pending_build = request
        return self._build_if_due()

    def _build_if_due(self) -> Block | None:
        request = self._pending_build
        stale = request is not None and (
            request.height != self._chain.head().height + 1 or request.round != self._engine.round
        )
        if request is None or stale:
            self._pending_build = None
            return None
        limit = self._chain.state.parameters.max_block_transactions
        wait = self._last_commit + self._timing.block_interval_seconds - self._monotonic()
        if wait > 0 and len(self._mempool) < limit:
            if not self._build_timer_armed:
                self._build_timer_armed = True
                timer = threading.Timer(wait, self._build_due)
                timer.daemon = True
                timer.start()
            return None
        self._pending_build = None
        started = time.perf_counter()
        candidates = self._mempool.take(limit, height=request.height)
        block, dropped = self._chain.build_proposal(request, candidates, int(self._clock() * 1000))
        # A transaction admitted in the instant its block committed can reach the mempool
        # after that block's clean-up; it must leave now or it would be offered forever.
        self._mempool.remove(tx.id for tx in dropped)
        log.debug(
            "built %d round %d with %d transactions in %.1f ms",
            block.height,
            request.round,
            len(block.transactions),
            (time.perf_counter() - started) * 1000,
        )
        return block

    def _build_due(self) -> None:
        self._build_timer_armed = False
        self._events.put(BuildDue())

    def _transactions_waiting(self) -> bool:
        return len(self._mempool) > 0

    # --- catch-up --------------------------------------------------------------------

    def _start_fetch(self, request: FetchBlocks) -> None:
        """Fetch on a worker thread; a request made while one runs follows it, not lost."""
        with self._fetch_lock:
            if self._fetch_running:
                self._fetch_next = request
                return
            self._fetch_running = True
        threading.Thread(target=self._fetch, args=(request,), name="sync", daemon=True).start()

    def _fetch(self, request: FetchBlocks | None) -> None:
        try:
            while request is not None:
                blocks = self._peers.fetch(
                    request.from_height, request.to_height, request.peers, self._decode_block
                )
                for block in blocks:
                    self._events.put(BlockFetched(block))
                with self._fetch_lock:
                    request, self._fetch_next = self._fetch_next, None
                    if request is None:
                        self._fetch_running = False
        except Exception:
            # The next request must still be able to start a worker: the engine asks again.
            log.exception("sync worker failed")
            with self._fetch_lock:
                self._fetch_running = False


class _Transport:
    """The runner's transport: messages to the peer links, fetches to a sync worker."""

    def __init__(self, peers: Peers, start_fetch: Callable[[FetchBlocks], None]) -> None:
        self._peers = peers
        self._start_fetch = start_fetch

    def send(self, data: bytes, to: str | None) -> None:
        self._peers.send(data, to)

    def fetch(self, request: FetchBlocks) -> None:
        self._start_fetch(request)


class _Proposer:
    """The runner's proposer: the driver builds from its mempool once the batch is due."""

    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    def build(self, request: BuildProposal) -> Block | None:
        return self._driver._build(request)

    def transactions_waiting(self) -> bool:
        return self._driver._transactions_waiting()


def _guarded(listener: CommitListener) -> CommitListener:
    def call(block: Block, execution: Execution) -> None:
        try:
            listener(block, execution)
        except Exception:  # a broken watcher must not stop the ledger
            log.exception("commit listener failed on block %d", block.height)

    return call
