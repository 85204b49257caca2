"""A validator's signature checks in worker processes, one per verifier thread.

``cryptography`` releases the GIL while it verifies, but a thread must take the GIL
back after every signature, and a thread running Python beside it (the node loop
executing a block, the intake decoding a batch) holds it for up to a switch interval
(5 ms) at a time. Measured in one process on 2 cores: two verifier threads checked
14,000 signatures a second alone and 455 a second beside one busy Python thread
(``services.validator.signature_bench``, docs/bench.md). So each of the verifier's pool
threads (``ledger.verifier``) gets an engine that sends its chunk to a worker process of
its own and waits on the pipe: the thread takes the GIL once per chunk, not once per
signature, and the worker verifies with nothing else in its interpreter.

A worker is ``python -m services.validator.signature_processes``, talking over its
standard input and output: a request is a pickled list of (key type, raw key, message,
signature), the answer one byte per item, 1 for a good signature. It imports only what
verifying needs, keeps the keys it has parsed, runs in a session of its own (Ctrl-C on
the terminal reaches only the node, which stops it by closing its input) and exits when
its input ends, so it never outlives its node.

If a worker cannot be started, stops, or does not answer within its deadline (a second
plus 20 ms a signature: a verification takes about 0.1 ms), the chunk in hand is
verified on the calling thread, so the verdicts are the same either way; the worker is
killed, and a new one is tried for the next chunk, or after ``RETRY_S`` if starting one
failed or it failed before its first answer (a worker that cannot run at all is not
started again for every chunk). A request is pickled whole before any byte is written,
and an exchange that fails part-way kills its worker, so a request and its answer can
never fall out of step.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, BinaryIO

# A worker imports this module: only what verifying needs at the top (26 MB of memory
# with the keys' modules, against 32 with the verifier's and the transaction's).
from ledger.errors import BadKeyError
from ledger.keys import KeyType, PublicKey

if TYPE_CHECKING:
    from ledger.verifier import Item

log = logging.getLogger(__name__)

STOP_WAIT_S = 2.0
# An answer is due within this, plus PER_ITEM_S a signature; past it the worker is killed.
ANSWER_S = 1.0
PER_ITEM_S = 0.02
# After a worker failed to start, the next try waits this long (verifying in the node).
RETRY_S = 30.0
# A worker keeps at most this many parsed keys (one per participant in practice).
KEY_CACHE = 4096


class WorkerStalled(Exception):
    """A worker did not take its request or answer it within the deadline."""


class ProcessEngine:
    """An engine for ``BatchVerifier(engines=ProcessEngine)``: see the module docstring."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._answered = False  # has the current worker answered anything yet
        self._retry_at = 0.0
        self.restarts = 0
        self._start()

    def _start(self) -> None:
        # The worker imports this module as its parent does: the parent's path, whatever
        # set it (an installed package, the working directory, PYTHONPATH).
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self._answered = False
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
            # Never blocked past a deadline: a full pipe or a silent worker is waited for
            # with select, and a write takes what fits.
            for stream in (self._process.stdin, self._process.stdout):
                assert stream is not None
                os.set_blocking(stream.fileno(), False)
        except Exception:  # never fails the node: its chunks are checked in the node
            log.exception("could not start a signature worker; verifying in the node for "
                          "%.0f s", RETRY_S)
            self._process = None
            self._retry_at = time.monotonic() + RETRY_S

    def __call__(self, items: Sequence[Item]) -> list[bool]:
        if not items:
            return []
        if self._process is None and time.monotonic() >= self._retry_at:
            self._start()
        process = self._process
        if process is not None:
            try:
                verdicts = self._exchange(process, items)
                self._answered = True
                return verdicts
            except Exception as error:  # a worker that fails in any way is replaced
                log.warning("signature worker %d failed (%s: %s): checking its chunk here "
                            "and starting another", process.pid, type(error).__name__, error)
                self.restarts += 1
                self._kill(process)
                self._process = None
                if not self._answered:  # it never worked: do not start one per chunk
                    self._retry_at = time.monotonic() + RETRY_S
        from ledger.verifier import verify_here  # not in the worker: see the imports

        return verify_here(items)

    @staticmethod
    def _exchange(process: subprocess.Popen[bytes], items: Sequence[Item]) -> list[bool]:
        request = pickle.dumps(
            [(key.type.value, key.data, message, signature) for key, message, signature in items],
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        assert process.stdin is not None and process.stdout is not None
        deadline = time.monotonic() + ANSWER_S + PER_ITEM_S * len(items)
        out, into = process.stdin.fileno(), process.stdout.fileno()
        sent = memoryview(request)
        while sent:
            _wait(out, deadline, writing=True)
            sent = sent[os.write(out, sent):]
        answer = b""
        while len(answer) < len(items):
            _wait(into, deadline, writing=False)
            chunk = os.read(into, len(items) - len(answer))
            if not chunk:
                raise EOFError(f"it ended after {len(answer)} of {len(items)} verdicts")
            answer += chunk
        return [verdict == 1 for verdict in answer]

    def close(self) -> None:
        if self._process is not None:
            self._stop(self._process)
            self._process = None

    @staticmethod
    def _stop(process: subprocess.Popen[bytes]) -> None:
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            process.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @staticmethod
    def _kill(process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(OSError):
            process.kill()
        ProcessEngine._stop(process)


def _wait(fd: int, deadline: float, *, writing: bool) -> None:
    left = deadline - time.monotonic()
    ready = select.select([], [fd], [], max(left, 0))[1] if writing else (
        select.select([fd], [], [], max(left, 0))[0])
    if not ready:
        raise WorkerStalled(f"no {'room' if writing else 'answer'} within the deadline")


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """The worker: verify each request, answer one byte per item, until input ends."""
    keys: dict[tuple[str, bytes], PublicKey | None] = {}
    while True:
        try:
            request = pickle.load(requests)
        except EOFError:
            return
        verdicts = bytearray(len(request))
        for i, (kind, raw, message, signature) in enumerate(request):
            key = keys.get((kind, raw), False)
            if key is False:
                if len(keys) >= KEY_CACHE:
                    keys.clear()
                try:
                    key = PublicKey(KeyType(kind), raw)
                except (BadKeyError, ValueError):
                    key = None  # never verifies: a key that does not parse signs nothing
                keys[(kind, raw)] = key
            if key is not None and key.verify(signature, message):
                verdicts[i] = 1
        answers.write(verdicts)
        answers.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
