"""The audit's signature verification in worker processes, each with a GIL of its own.

Verification threads in the auditing process share its GIL with the replay and the
reader: after every signature a thread waits for the interpreter lock, and on the
benchmark's chain the audit used about 1.5 of 2 cores that way (docs/bench.md). Worker
processes verify with nothing else in their interpreter, so the parent's Python work
and every worker's verification run on the cores at once.

A task is the keys in force for its blocks (signer, key type, raw key) and, per block,
each decoded transaction's signer, body bytes and signature, as the parent already
holds them (about 0.6 µs a transaction to gather and pickle; a worker reading them
from the SQLite file itself would spend about 2.4 µs a transaction on the query alone,
and a validator's blocks arrive over the network anyway). The worker builds the signed
bytes (the chain's prefix and the body) and answers one verdict byte per transaction.
Tasks wait in one queue and each worker takes the next as soon as it has room, so the
workers share the tasks by how much CPU each gets (tasks dealt out in turn left the
worker that shared a core with the auditing process behind, and the other idle while the
audit waited for it). The parent takes the answers back block by block in height
order, so a finding is always filed under the block that holds it.

A worker is ``python -m clients.audit.signatures``, talking pickles over its standard
input and output: it imports only what verifying needs (about 0.1 s of CPU to start)
and inherits no thread, gRPC channel or SQLite connection of the parent, and nothing of
the parent's ``__main__``. Workers run in a session of their own, so Ctrl-C on the
terminal reaches only the parent, which stops them: closing a worker's input ends it,
and one still busy after ``STOP_WAIT_S`` is killed. A worker whose parent dies sees its
input end and exits.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import BinaryIO

from ledger import codec
from ledger.keys import KeyType, PublicKey

KeyEntry = tuple[str, str, bytes]  # signer, key type, raw public key
BlockWork = tuple[tuple[str, ...], list[bytes], list[bytes]]  # signers, bodies, signatures
STOP_WAIT_S = 2.0
IN_FLIGHT = 2  # tasks a worker holds at once: one it verifies, the next in its pipe

# Keys this worker has parsed, by (type, raw bytes): a task names its keys as bytes and
# parsing one costs about as much as a verification.
_parsed: dict[tuple[str, bytes], PublicKey] = {}


class WorkerError(Exception):
    """A signature worker stopped or failed: the audit could not run to its end."""


def verify_blocks(
    prefix: bytes, keys: Sequence[KeyEntry], blocks: Sequence[BlockWork]
) -> list[bytes]:
    """One verdict byte (1 verified, 0 not) per transaction of each block, in order.

    A signer without a key gets 0, as the ledger refuses it."""
    by_signer: dict[str, PublicKey] = {}
    for signer, kind, data in keys:
        key = _parsed.get((kind, data))
        if key is None:
            key = _parsed[(kind, data)] = PublicKey(KeyType(kind), data)
        by_signer[signer] = key
    answers = []
    for signers, bodies, signatures in blocks:
        verdicts = bytearray(len(signers))
        for i, signer in enumerate(signers):
            key = by_signer.get(signer)
            if key is not None and key.verify(signatures[i], prefix + bodies[i]):
                verdicts[i] = 1
        answers.append(bytes(verdicts))
    return answers


def serve(tasks: BinaryIO, answers: BinaryIO) -> None:
    """A worker's loop: the chain's signing prefix, then tasks until the input ends."""
    try:
        prefix = pickle.load(tasks)
        while True:
            try:
                keys, blocks = pickle.load(tasks)
            except EOFError:
                return
            try:
                answer: tuple[str, object] = ("ok", verify_blocks(prefix, keys, blocks))
            except Exception as error:  # reported to the parent, which raises
                answer = ("error", f"{type(error).__name__}: {error}")
            pickle.dump(answer, answers, protocol=pickle.HIGHEST_PROTOCOL)
            answers.flush()
    except (BrokenPipeError, EOFError):
        return  # the parent is gone


class Task:
    """Verdicts to come from a worker; ``result()`` waits for them."""

    __slots__ = ("_done", "answer", "error")

    def __init__(self) -> None:
        self._done = threading.Event()
        self.answer: list[bytes] | None = None
        self.error: str | None = None

    def finish(self, answer: list[bytes] | None = None, error: str | None = None) -> None:
        self.answer, self.error = answer, error
        self._done.set()

    def result(self) -> list[bytes]:
        self._done.wait()
        if self.error is not None:
            raise WorkerError(self.error)
        assert self.answer is not None
        return self.answer


_STOP = None  # on the pool's queue: every worker's thread stops, passing it on


class _Worker:
    """One worker process, and two threads in the parent: one feeds it, one reads its
    answers.

    The feeding thread takes the next task from the pool's queue whenever its worker
    holds fewer than ``IN_FLIGHT``, so a worker that gets more of the CPU takes more of
    the tasks; a task handed out ahead to a slower worker would leave the faster one
    idle while the audit waits, in height order, for the slower one's answer. Two in
    flight keep the next task in the pipe while the worker verifies the current one.
    Reading answers on a thread of its own means a worker never waits to write an
    answer while the parent waits to write it a task (an answer larger than the pipe,
    from a block of tens of thousands of transactions, would otherwise stop both).
    """

    def __init__(self, prefix: bytes, pool: SignaturePool) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        self.in_flight: deque[Task] = deque()
        self._pool = pool
        self._room = threading.Semaphore(IN_FLIGHT)
        self._lock = threading.Lock()
        self._ended: str | None = None  # why the answers stopped, once they have
        self._threads = [
            threading.Thread(target=self._feed, args=(prefix,), name="audit-feed", daemon=True),
            threading.Thread(target=self._read, name="audit-answers", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _feed(self, prefix: bytes) -> None:
        # Pickling and writing here, not in the caller: a pipe holds 64 KiB and a task is
        # larger, so the caller would wait for a busy worker to read it.
        stdin = self.process.stdin
        assert stdin is not None
        tasks = self._pool.tasks
        try:
            pickle.dump(prefix, stdin, protocol=pickle.HIGHEST_PROTOCOL)
            stdin.flush()
            while True:
                self._room.acquire()
                item = tasks.get()
                if item is _STOP:
                    tasks.put(_STOP)
                    return
                task, work = item  # type: ignore[misc]
                with self._lock:
                    failure = self._pool.failure or self._ended
                    if failure is None:
                        self.in_flight.append(task)
                if failure is not None:
                    task.finish(error=failure)
                    self._room.release()
                    continue
                pickle.dump(work, stdin, protocol=pickle.HIGHEST_PROTOCOL)
                stdin.flush()
        except (OSError, ValueError):
            return  # the worker is gone: the reading thread reports it
        except BaseException as error:  # a task that does not pickle, say
            reason = (f"signature worker {self.process.pid} could not be fed: "
                      f"{type(error).__name__}: {error}")
            self._pool.fail(reason)
            self._end(reason)
        finally:
            with contextlib.suppress(BrokenPipeError, OSError):
                stdin.close()

    def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        reason = "the signature workers were stopped"
        try:
            while True:
                status, answer = pickle.load(stdout)
                if status != "ok":
                    reason = f"signature worker {self.process.pid} failed: {answer}"
                    self._pool.fail(reason)
                    return
                with self._lock:
                    task = self.in_flight.popleft()
                task.finish(answer)
                self._room.release()
        except BaseException as error:
            if not self._pool.stopping:
                code = self.process.poll()
                reason = f"signature worker {self.process.pid} stopped" + (
                    f" with exit status {code}" if code is not None else f" ({error})")
                self._pool.fail(reason)
        finally:
            self._end(reason)

    def _end(self, reason: str) -> None:
        """No more answers: the tasks held fail with ``reason``, and the feeding thread,
        if it waits for room, wakes to find the pool failed or stopping."""
        with self._lock:
            if self._ended is None:
                self._ended = reason
            held, self.in_flight = list(self.in_flight), deque()
        for task in held:
            task.finish(error=reason)
        for _ in range(IN_FLIGHT + 1):
            self._room.release()

    def stop(self) -> None:
        """After the pool's stop is queued: a worker busy with a task is killed after a
        while, one that is idle ends when its input closes."""
        busy = bool(self.in_flight)
        try:
            self.process.wait(timeout=0 if busy else STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for thread in self._threads:
            thread.join(timeout=STOP_WAIT_S)
        if self.process.stdout is not None:
            self.process.stdout.close()


class SignaturePool:
    """Worker processes that verify the audit's transaction signatures.

    ``start()`` starts them, ``close()`` stops them; as a context manager it stops them
    also when the audit fails or is interrupted. Tasks wait in one queue, and each
    worker takes the next when it has room; if a worker stops or fails, every task not
    yet answered fails with that reason, and so does every task submitted after.
    """

    def __init__(self, workers: int, chain_id: str) -> None:
        self.workers = max(1, workers)
        self._prefix = codec.signing_bytes(chain_id, codec.TX, b"")
        self._pool: list[_Worker] = []
        self.tasks: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.failure: str | None = None
        self._failing = threading.Lock()
        self.stopping = False

    def start(self) -> SignaturePool:
        if not self._pool:
            self.tasks, self.failure, self.stopping = queue.SimpleQueue(), None, False
            try:
                for _ in range(self.workers):
                    self._pool.append(_Worker(self._prefix, self))
            except BaseException:
                self.close()
                raise
        return self

    def fail(self, reason: str) -> None:
        """The first failure stands; the tasks waiting fail with it."""
        with self._failing:
            if self.failure is None:
                self.failure = reason
        self._drop_waiting(self.failure)

    def _drop_waiting(self, reason: str) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                item = self.tasks.get_nowait()
                if item is _STOP:
                    self.tasks.put(_STOP)
                    return
                item[0].finish(error=reason)  # type: ignore[index]

    def close(self) -> None:
        pool, self._pool = self._pool, []
        if not pool:
            return
        self.stopping = True
        # Tasks not yet handed out are dropped; busy workers are killed.
        self._drop_waiting("the signature workers were stopped")
        self.tasks.put(_STOP)
        for worker in pool:
            worker.stop()

    def __enter__(self) -> SignaturePool:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def submit(self, keys: Mapping[str, PublicKey], blocks: list[BlockWork]) -> Task:
        """Queues ``blocks`` for the next worker with room; ``blocks`` must not change
        after."""
        if not self._pool:
            raise RuntimeError("SignaturePool.start() must be called before submit")
        entries = tuple((signer, key.type.value, key.data) for signer, key in keys.items())
        task = Task()
        self.tasks.put((task, (entries, blocks)))
        if self.failure is not None:
            self._drop_waiting(self.failure)  # no worker may be left to take it
        return task

    def pids(self) -> list[int]:
        """The workers' process ids."""
        return [worker.process.pid for worker in self._pool]


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
