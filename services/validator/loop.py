"""The node loop: the one thread where the clock, the network and the QBFT engine meet.

Every input — a peer's message, a tick of the clock, new transactions in the
mempool, a block fetched for catch-up, a proposal whose batching delay is over —
becomes an event on one queue. The loop takes events one at a time, hands each to
the engine and carries out the ``Ready`` it returns in the order the engine
requires: persist the last-signed record, commit blocks, send messages, start a
fetch, build a proposal, then ``advance`` after a commit. Because only this thread
touches the engine and the chain, neither needs a lock.

A proposal is not built the moment the engine asks: it waits until
``block_interval`` has passed since the last commit or a full block's worth of
transactions is waiting, so blocks carry batches rather than single payments.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ledger.block import Block
from ledger.consensus import BuildProposal, Engine, FetchBlocks, Ready
from ledger.execute import Execution
from ledger.store import Store
from services.validator.chain import Chain
from services.validator.mempool import Mempool
from services.validator.peers import Peers

log = logging.getLogger(__name__)

CommitListener = Callable[[Block, Execution], None]


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
        self._store = store
        self._mempool = mempool
        self._peers = peers
        self._timing = timing
        self._decode_block = decode_block
        self._clock = clock  # block timestamps only
        self._monotonic = monotonic  # intervals: immune to the wall clock being stepped
        self._events: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
        # The engine's first event, queued before anything can deliver a message to it.
        self._events.put(("start", None))
        self._listeners: list[CommitListener] = []
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

    # --- life cycle ------------------------------------------------------------------

    def add_listener(self, listener: CommitListener) -> None:
        self._listeners.append(listener)

    def start(self) -> None:
        self._loop.start()
        self._ticker.start()

    def stop(self) -> None:
        self._stopped.set()
        self._events.put(("stop", None))
        self._loop.join(timeout=5)
        self._ticker.join(timeout=5)

    # --- inputs, from any thread -----------------------------------------------------

    def deliver(self, message: bytes) -> None:
        self._events.put(("message", message))

    def transactions_available(self) -> None:
        self._events.put(("transactions", None))

    @property
    def engine(self) -> Engine:
        return self._engine

    # --- the loop --------------------------------------------------------------------

    def _tick(self) -> None:
        while not self._stopped.wait(self._timing.tick_seconds):
            self._events.put(("tick", None))

    def _run(self) -> None:
        while True:
            kind, payload = self._events.get()
            if kind == "stop":
                return
            try:
                self._handle(kind, payload)
            except Exception:
                # The engine and the chain may now disagree with the store (a block decided
                # but not written, a signature made but not recorded): going on could stall
                # the height for good or sign twice. Stop, as a crash would; a restart
                # resumes from the store.
                log.critical("node loop: event %s failed; the node stops", kind, exc_info=True)
                self.failed.set()
                return

    def _handle(self, kind: str, payload: object) -> None:
        engine = self._engine
        if kind == "message":
            started = time.perf_counter()
            ready = engine.receive(payload)  # type: ignore[arg-type]
            spent = time.perf_counter() - started
            if spent > 0.05:
                log.debug("a consensus message took %.1f ms (round %d)", spent * 1000, engine.round)
        elif kind == "tick":
            ready = engine.tick()
        elif kind == "transactions":
            ready = engine.transactions_available()
        elif kind == "synced":
            ready = engine.synced(payload)  # type: ignore[arg-type]
        elif kind == "build":
            ready = self._build_if_due()
        elif kind == "start":
            ready = engine.start()
        else:
            raise ValueError(f"expected a known event kind, got {kind!r}")
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
        self._carry_out(ready)
        if self._pending_build is not None and kind in ("transactions", "tick"):
            self._carry_out(self._build_if_due())

    def _carry_out(self, ready: Ready) -> None:
        # First in, first out: a later Ready may carry a newer last-signed record, and
        # the record on disk must never go back to an older one.
        todo = deque([ready])
        while todo:
            ready = todo.popleft()
            if ready.last_signed is not None:
                self._store.save_last_signed(ready.last_signed.encode())
            for block in ready.committed:
                self._commit(block)
            for outbound in ready.messages:
                self._peers.send(outbound.data, outbound.to)
            if ready.fetch is not None:
                self._start_fetch(ready.fetch)
            if ready.build is not None:
                self._pending_build = ready.build
                todo.append(self._build_if_due())
            if ready.committed:
                todo.append(self._engine.advance())
                if len(self._mempool):
                    # The new height starts idle; what is still waiting must wake it.
                    todo.append(self._engine.transactions_available())

    def _commit(self, block: Block) -> None:
        started = time.perf_counter()
        execution = self._chain.commit(block)
        log.debug(
            "committed %d (round %d, %d transactions) in %.1f ms",
            block.height,
            block.header.round,
            len(block.transactions),
            (time.perf_counter() - started) * 1000,
        )
        self._mempool.remove(t.id for t in block.transactions)
        self._mempool.prune_expired(block.height + 1)
        self._last_commit = self._monotonic()
        if self._pending_build is not None and self._pending_build.height <= block.height:
            self._pending_build = None
        for listener in self._listeners:
            try:
                listener(block, execution)
            except Exception:  # a broken watcher must not stop the ledger
                log.exception("commit listener failed on block %d", block.height)

    def _build_if_due(self) -> Ready:
        request = self._pending_build
        stale = request is not None and (
            request.height != self._chain.head().height + 1 or request.round != self._engine.round
        )
        if request is None or stale:
            self._pending_build = None
            return Ready()
        limit = self._chain.state.parameters.max_block_transactions
        wait = self._last_commit + self._timing.block_interval_seconds - self._monotonic()
        if wait > 0 and len(self._mempool) < limit:
            if not self._build_timer_armed:
                self._build_timer_armed = True
                timer = threading.Timer(wait, self._build_due)
                timer.daemon = True
                timer.start()
            return Ready()
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
        return self._engine.propose(block)

    def _build_due(self) -> None:
        self._build_timer_armed = False
        self._events.put(("build", None))

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
                    self._events.put(("synced", block))
                with self._fetch_lock:
                    request, self._fetch_next = self._fetch_next, None
                    if request is None:
                        self._fetch_running = False
        except Exception:
            # The next request must still be able to start a worker: the engine asks again.
            log.exception("sync worker failed")
            with self._fetch_lock:
                self._fetch_running = False
