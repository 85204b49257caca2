"""A validator's signature checks in worker processes, one per verifier thread.

``cryptography`` releases the GIL while it verifies, but a thread must take the GIL
back after every signature, and a thread running Python beside it (the node loop
executing a block, the intake decoding a batch) holds it for up to a switch interval
(5 ms) at a time. Measured in one process on 2 cores: two verifier threads check about
9,800 signatures a second alone and about 480 a second beside one busy Python thread
(docs/bench.md). So each of the verifier's pool threads (``ledger.verifier``) gets an
engine that sends its chunk to a worker process of its own and waits on the pipe: the
thread takes the GIL once per chunk, not once per signature, and the worker verifies
with nothing else in its interpreter.

A worker is ``python -m services.validator.signature_processes``, talking over its
standard input and output: a request is a pickled list of (key type, raw key, message,
signature), the answer one byte per item, 1 for a good signature. It imports only what
verifying needs, keeps the keys it has parsed, runs in a session of its own (Ctrl-C on
the terminal reaches only the node, which stops it by closing its input) and exits when
its input ends, so it never outlives its node.

If a worker cannot be started or stops, the chunk in hand is verified on the calling
thread, so the verdicts are the same either way; the engine starts a new worker for
the next chunk, and logs each failure.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import subprocess
import sys
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
# A worker keeps at most this many parsed keys (one per participant in practice).
KEY_CACHE = 4096


class ProcessEngine:
    """An engine for ``BatchVerifier(engines=ProcessEngine)``: see the module docstring."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._start()

    def _start(self) -> None:
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError:
            log.exception("could not start a signature worker; verifying in the node")
            self._process = None

    def __call__(self, items: Sequence[Item]) -> list[bool]:
        if not items:
            return []
        if self._process is None:
            self._start()
        process = self._process
        if process is not None:
            request = [(key.type.value, key.data, message, signature)
                       for key, message, signature in items]
            try:
                stdin, stdout = process.stdin, process.stdout
                assert stdin is not None and stdout is not None
                pickle.dump(request, stdin, protocol=pickle.HIGHEST_PROTOCOL)
                stdin.flush()
                answer = stdout.read(len(items))
                if len(answer) == len(items):
                    return [verdict == 1 for verdict in answer]
                failure = f"it answered {len(answer)} of {len(items)} verdicts"
            except (OSError, ValueError) as error:
                failure = str(error)
            log.warning("signature worker %d stopped (%s): checking its chunk here and "
                        "starting another", process.pid, failure)
            self.restarts += 1
            self._stop(process)
            self._process = None
        from ledger.verifier import verify_here  # not in the worker: see the imports

        return verify_here(items)

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
