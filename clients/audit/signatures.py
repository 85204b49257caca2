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
Tasks go to the worker with the fewest outstanding, each worker answers in the order it
was asked, and the parent takes the answers back block by block in height order, so a
finding is always filed under the block that holds it.

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
    """Verdicts to come from one worker; ``result()`` waits for them."""

    def __init__(self, worker: _Worker) -> None:
        self._worker = worker
        self.answer: list[bytes] | None = None  # set by the worker's reader

    def result(self) -> list[bytes]:
        while self.answer is None:
            self._worker.read_answer()
        return self.answer


class _Worker:
    def __init__(self, prefix: bytes) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        self.outstanding: deque[Task] = deque()
        self._writes: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, name="audit-signatures", daemon=True)
        self._writes.put(prefix)
        self._writer.start()

    def _write(self) -> None:
        # Pickling and writing here, not in the caller: a pipe holds 64 KiB and a task
        # is larger, so the caller would wait for a busy worker to read it.
        stdin = self.process.stdin
        assert stdin is not None
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            while (item := self._writes.get()) is not None:
                pickle.dump(item, stdin, protocol=pickle.HIGHEST_PROTOCOL)
                stdin.flush()
        with contextlib.suppress(BrokenPipeError, OSError):
            stdin.close()

    def submit(self, work: tuple[tuple[KeyEntry, ...], list[BlockWork]]) -> Task:
        task = Task(self)
        self.outstanding.append(task)
        self._writes.put(work)
        return task

    def read_answer(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            status, answer = pickle.load(stdout)
        except (EOFError, pickle.UnpicklingError, OSError) as error:
            code = self.process.poll()
            raise WorkerError(
                f"signature worker {self.process.pid} stopped"
                + (f" with exit status {code}" if code is not None else f" ({error})")
            ) from None
        if status != "ok":
            raise WorkerError(f"signature worker {self.process.pid} failed: {answer}")
        self.outstanding.popleft().answer = answer

    def stop(self) -> None:
        # Tasks not yet written are dropped; a worker busy with one is killed after a while.
        with contextlib.suppress(queue.Empty):
            while True:
                self._writes.get_nowait()
        self._writes.put(None)
        try:
            self.process.wait(timeout=0 if self.outstanding else STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._writer.join(timeout=STOP_WAIT_S)
        if self.process.stdout is not None:
            self.process.stdout.close()


class SignaturePool:
    """Worker processes that verify the audit's transaction signatures.

    ``start()`` starts them, ``close()`` stops them; as a context manager it stops them
    also when the audit fails or is interrupted.
    """

    def __init__(self, workers: int, chain_id: str) -> None:
        self.workers = max(1, workers)
        self._prefix = codec.signing_bytes(chain_id, codec.TX, b"")
        self._pool: list[_Worker] = []

    def start(self) -> SignaturePool:
        if not self._pool:
            try:
                for _ in range(self.workers):
                    self._pool.append(_Worker(self._prefix))
            except BaseException:
                self.close()
                raise
        return self

    def close(self) -> None:
        pool, self._pool = self._pool, []
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
        """Hands ``blocks`` to the least busy worker; ``blocks`` must not change after."""
        if not self._pool:
            raise RuntimeError("SignaturePool.start() must be called before submit")
        entries = tuple((signer, key.type.value, key.data) for signer, key in keys.items())
        worker = min(self._pool, key=lambda w: len(w.outstanding))
        return worker.submit((entries, blocks))

    def pids(self) -> list[int]:
        """The workers' process ids."""
        return [worker.process.pid for worker in self._pool]


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
