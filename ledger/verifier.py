"""Batch signature verification over all cores, with a cache of positive verdicts.

``BatchVerifier.verify`` takes (public key, message, signature) triples and returns one
verdict per triple, in order. A bad or malformed signature yields ``False`` for its own
item and never raises, hides or spoils a neighbour.

Why threads: ``cryptography`` >= 50 releases the GIL while it verifies, so a thread pool
scales across cores without pickling keys and messages into other processes (measured
in ``docs/verifier.md``). A batch is cut into one strided chunk per worker (item i goes to
chunk i % workers, which also balances a batch that mixes Ed25519 and P-256); the calling
thread verifies one chunk itself, so a batch costs workers - 1 tasks, not one per item.
Batches smaller than ``inline_below`` are verified on the calling thread alone: below that
size handing work to another thread costs more than it saves.

Where a thread verifies is its engine: by default it calls ``PublicKey.verify`` itself,
and every call gives the GIL back and must take it again, which a thread running Python
beside it holds for up to a switch interval (5 ms) at a time; with a busy interpreter
the threads then verify a small fraction of what their cores could. A node passes
``engines`` (``services/validator/signature_processes.py``) so that each pool thread hands
its chunks to a worker process of its own instead; the caller then verifies nothing
itself and every chunk goes to the pool.

``submit_transactions`` is the same check without waiting: the batch goes to the pool in
chunks of ``chunk_size`` and the caller gets a ``PendingVerdicts`` to collect later, so
it can prepare its next batch while the workers verify this one (a validator's
admission, ``services/validator/intake.py``). The pool serves ``verify`` first: a
waiting caller (a block being validated) is behind at most the chunks already being
verified, never behind a queue of submitted batches.

The cache remembers successes only, keyed by SHA-256 over (key fingerprint, signature,
SHA-256 of the message). A transaction id is by definition SHA-256 of the signed bytes,
so ``verify_transactions`` reuses it as the message digest: a transaction checked at
admission is a cache hit when it returns inside a block, whichever method saw it first.
The key covers every input of the verdict, so a hit returns exactly the verdict a fresh
check would; failures are never cached, so nothing can turn a bad signature good.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from itertools import islice
from types import TracebackType

from ledger.keys import PublicKey
from ledger.transaction import Transaction

# Measured on 2 cores (docs/verifier.md): handing a chunk to a worker thread costs about
# one Ed25519 verify, so a batch of one is cheaper inline and two already gain.
DEFAULT_INLINE_BELOW = 2
# A transaction comes back inside a block soon after admission: a validator holds at
# most a mempool and an intake queue of them (14,000 by default), so twice that keeps
# every hit while the cache, full within minutes, stops growing (docs/runtime.md).
DEFAULT_CACHE_SIZE = 32_768
# A submitted batch is verified in chunks of this many: small enough that a waiting
# ``verify`` is not held up long behind one (64 Ed25519 checks, about 7 ms), large enough
# that handing a chunk over is a small part of its cost.
DEFAULT_CHUNK_SIZE = 64

Item = tuple[PublicKey, bytes, bytes]
# Verifies its items and answers one verdict each, in order; never raises on bad bytes.
Engine = Callable[[Sequence[Item]], list[bool]]


@dataclass(frozen=True, slots=True)
class VerifierStats:
    """Running totals since construction, for metrics.

    ``verified`` counts signature checks actually performed, ``cache_hits`` verdicts
    answered from the cache, ``failures`` items whose verdict was False (including
    transactions whose signer has no key).
    """

    verified: int
    cache_hits: int
    failures: int


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), which a container may limit."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _VerdictCache:
    """A bounded, thread-safe set of cache keys whose signature verified; oldest out first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._keys: dict[bytes, None] = {}
        self._lock = threading.Lock()

    def known(self, keys: Sequence[bytes]) -> list[bool]:
        with self._lock:
            entries = self._keys
            return [k in entries for k in keys]

    def add(self, keys: Sequence[bytes]) -> None:
        if not keys:
            return
        with self._lock:
            entries = self._keys
            for k in keys:
                entries[k] = None
            # Insertion order is age order, so the first keys are the oldest.
            excess = len(entries) - self.capacity
            if excess > 0:
                for k in list(islice(entries, excess)):
                    del entries[k]


def _cache_key(key: PublicKey, signature: bytes, message_digest: bytes) -> bytes:
    # The fingerprint starts with the key type and each type has a fixed key length, and
    # the digest has a fixed length, so the concatenation is unambiguous.
    return hashlib.sha256(key.fingerprint + bytes(signature) + message_digest).digest()


def verify_here(items: Sequence[Item]) -> list[bool]:
    """The engine of a thread that verifies itself."""
    return [key.verify(signature, message) for key, message, signature in items]


def _verify_with_cache(
    cache: _VerdictCache,
    items: Sequence[Item],
    digests: Sequence[bytes] | None,
    engine: Engine,
) -> tuple[list[bool], int]:
    """Verdicts for one chunk and how many signatures it really checked.

    Hashing and cache lookups happen here, in the chunk, so they too are spread over
    the workers. ``digests`` are the messages' SHA-256 when the caller already has them.
    """
    if digests is None:
        digests = [hashlib.sha256(message).digest() for _, message, _ in items]
    keys = [
        _cache_key(key, signature, digest)
        for (key, _, signature), digest in zip(items, digests, strict=True)
    ]
    verdicts = cache.known(keys)
    missing = [i for i, hit in enumerate(verdicts) if not hit]
    if not missing:
        return verdicts, 0
    fresh = engine([items[i] for i in missing] if len(missing) < len(items) else items)
    verified_keys: list[bytes] = []
    for i, good in zip(missing, fresh, strict=True):
        if good:
            verdicts[i] = True
            verified_keys.append(keys[i])
    cache.add(verified_keys)
    return verdicts, len(missing)


Task = Callable[[Engine], object]


class _Pool:
    """Worker threads taking tasks from two queues, the urgent one first; each thread
    runs its tasks with an engine of its own, made when the thread starts."""

    def __init__(self, workers: int, engines: Callable[[], Engine] | None) -> None:
        self._engines = engines
        self._urgent: deque[tuple[Future, Task]] = deque()
        self._later: deque[tuple[Future, Task]] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"verifier_{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, task: Task, *, urgent: bool) -> Future:
        future: Future = Future()
        with self._wake:
            if self._closed:
                raise RuntimeError("the verifier is closed")
            (self._urgent if urgent else self._later).append((future, task))
            self._wake.notify()
        return future

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        for thread in self._threads:
            thread.join()

    def _work(self) -> None:
        engine = self._engines() if self._engines is not None else verify_here
        try:
            self._serve(engine)
        finally:
            close = getattr(engine, "close", None)
            if close is not None:
                close()

    def _serve(self, engine: Engine) -> None:
        while True:
            with self._wake:
                while not self._urgent and not self._later and not self._closed:
                    self._wake.wait()
                if self._urgent:
                    future, task = self._urgent.popleft()
                elif self._later:
                    future, task = self._later.popleft()
                else:  # closed, and nothing left to do
                    return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(task(engine))
            except BaseException as error:  # the waiting caller hears of it
                future.set_exception(error)


class PendingVerdicts:
    """The verdicts of a submitted batch, in order; ``result()`` waits for them."""

    def __init__(
        self,
        size: int,
        chunks: list[Future],
        positions: list[int],
        done: Callable[[int, list[bool]], None],
    ) -> None:
        self._size = size
        self._chunks = chunks
        self._positions = positions
        self._done = done
        self._verdicts: list[bool] | None = None

    def result(self) -> list[bool]:
        if self._verdicts is None:
            found: list[bool] = []
            checked = 0
            for future in self._chunks:
                verdicts, chunk_checked = future.result()
                found.extend(verdicts)
                checked += chunk_checked
            self._done(checked, found)
            self._verdicts = _spread(self._size, self._positions, found)
        return self._verdicts


class BatchVerifier:
    """Verifies batches of signatures on a thread pool; see the module docstring.

    The constructor only assigns: ``start()`` starts the pool and ``close()`` stops it
    (or use it as a context manager). Safe to call from many threads at once.
    """

    def __init__(
        self,
        workers: int | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        inline_below: int = DEFAULT_INLINE_BELOW,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        engines: Callable[[], Engine] | None = None,
    ) -> None:
        self.workers = max(1, workers if workers is not None else available_cores())
        self._engines = engines
        self.inline_below = max(1, inline_below)
        self.chunk_size = max(1, chunk_size)
        self._cache = _VerdictCache(max(0, cache_size))
        self._pool: _Pool | None = None
        self._started = False
        self._counter_lock = threading.Lock()
        self._verified = 0
        self._cache_hits = 0
        self._failures = 0

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> BatchVerifier:
        if self._pool is None and (self.workers > 1 or self._engines is not None):
            # One thread per core: a submitted batch has no caller verifying beside them.
            self._pool = _Pool(self.workers, self._engines)
        self._started = True
        return self

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self._started = False

    def __enter__(self) -> BatchVerifier:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- verification ----------------------------------------------------------------

    def verify(self, items: Sequence[Item]) -> list[bool]:
        """One verdict per (key, message, signature), in order; never raises on bad bytes."""
        return self._run(items, None)

    def verify_transactions(
        self,
        transactions: Sequence[Transaction],
        key_of: Callable[[str], PublicKey | None],
    ) -> list[bool]:
        """One verdict per transaction: signed by the key ``key_of(signer)`` returns.

        A signer with no key (``key_of`` returns None) gets False. No message is hashed
        here: ``Transaction`` guarantees its id is SHA-256 of exactly ``tx.signed``.
        """
        positions, items, digests = _items(transactions, key_of)
        self._count_unknown(len(transactions) - len(positions))
        return _spread(len(transactions), positions, self._run(items, digests))

    def submit_transactions(
        self,
        transactions: Sequence[Transaction],
        key_of: Callable[[str], PublicKey | None],
    ) -> PendingVerdicts:
        """``verify_transactions`` without waiting: the verdicts come from ``result()``.

        The batch is verified on the pool's threads after every ``verify`` waiting then;
        with no pool (one worker) it is verified here, before this returns.
        """
        if not self._started:
            raise RuntimeError("BatchVerifier.start() must be called before verify")
        positions, items, digests = _items(transactions, key_of)
        self._count_unknown(len(transactions) - len(positions))
        step = self.chunk_size
        chunks: list[Future] = []
        for start in range(0, len(items), step):
            part, part_digests = items[start : start + step], digests[start : start + step]
            if self._pool is None:
                future: Future = Future()
                future.set_result(self._verify_chunk(part, part_digests, verify_here))
            else:
                future = self._pool.submit(
                    lambda e, p=part, d=part_digests: self._verify_chunk(p, d, e), urgent=False
                )
            chunks.append(future)
        return PendingVerdicts(len(transactions), chunks, positions, self._counted)

    def _counted(self, checked: int, verdicts: list[bool]) -> None:
        self._count(
            verified=checked, cache_hits=len(verdicts) - checked, failures=verdicts.count(False)
        )

    def _count_unknown(self, unknown: int) -> None:
        if unknown:
            self._count(verified=0, cache_hits=0, failures=unknown)

    def stats(self) -> VerifierStats:
        with self._counter_lock:
            return VerifierStats(self._verified, self._cache_hits, self._failures)

    # --- internals -----------------------------------------------------------------------

    def _run(self, items: Sequence[Item], digests: Sequence[bytes] | None) -> list[bool]:
        if not self._started:
            raise RuntimeError("BatchVerifier.start() must be called before verify")
        if not items:
            return []
        chunks = min(self.workers, len(items))
        here = self._engines is None  # the caller verifies a chunk itself
        if self._pool is None or (here and (len(items) < self.inline_below or chunks < 2)):
            verdicts, checked = self._verify_chunk(items, digests, verify_here)
        else:
            first = 1 if here else 0
            futures = [
                self._pool.submit(
                    lambda e, c=c: self._verify_chunk(
                        items[c::chunks], _stride(digests, c, chunks), e
                    ),
                    urgent=True,
                )
                for c in range(first, chunks)
            ]
            verdicts = [False] * len(items)
            checked = 0
            if here:
                verdicts[0::chunks], checked = self._verify_chunk(
                    items[0::chunks], _stride(digests, 0, chunks), verify_here
                )
            for c, future in enumerate(futures, start=first):
                verdicts[c::chunks], chunk_checked = future.result()
                checked += chunk_checked
        self._counted(checked, verdicts)
        return verdicts

    def _verify_chunk(
        self, items: Sequence[Item], digests: Sequence[bytes] | None, engine: Engine
    ) -> tuple[list[bool], int]:
        if not self._cache.capacity:
            return engine(items), len(items)
        return _verify_with_cache(self._cache, items, digests, engine)

    def _count(self, *, verified: int, cache_hits: int, failures: int) -> None:
        with self._counter_lock:
            self._verified += verified
            self._cache_hits += cache_hits
            self._failures += failures


def _stride(values: Sequence[bytes] | None, first: int, step: int) -> Sequence[bytes] | None:
    return None if values is None else values[first::step]


def _items(
    transactions: Sequence[Transaction], key_of: Callable[[str], PublicKey | None]
) -> tuple[list[int], list[Item], list[bytes]]:
    """The positions of the transactions whose signer has a key, their items and digests.

    No message is hashed: ``Transaction`` guarantees its id is SHA-256 of ``tx.signed``.
    """
    positions: list[int] = []
    items: list[Item] = []
    digests: list[bytes] = []
    for i, tx in enumerate(transactions):
        key = key_of(tx.signer)
        if key is None:
            continue
        positions.append(i)
        items.append((key, tx.signed, tx.signature))
        digests.append(tx.id)
    return positions, items, digests


def _spread(size: int, positions: list[int], verdicts: list[bool]) -> list[bool]:
    """``size`` verdicts: those given at ``positions``, False (no key) everywhere else."""
    if len(positions) == size:
        return verdicts
    out = [False] * size
    for i, verdict in zip(positions, verdicts, strict=True):
        out[i] = verdict
    return out
