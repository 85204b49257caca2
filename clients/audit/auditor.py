"""The audit of one source: every block from genesis to head, checked and replayed.

Three stages run at once so that the cores spend their time verifying signatures:

* a reader thread fetches pages of blocks from the source and decodes them (header,
  transactions, ids), never raising on damaged bytes: what does not decode is noted;
* the signatures are verified by worker processes (``clients.audit.signatures``), fed
  each block's signers, bodies and signatures with the participants' keys as the chain
  has admitted them so far; or, with a ``BatchVerifier``, by threads of this process;
* the calling thread replays each block with the ledger's own rules (``ledger.execute``)
  from the state before it, runs every check of ``clients.audit.checks`` and files the
  findings under the block's height.

The signature stage runs ahead of the replay, so the keys it used are held against the
replayed state's keys for each signer; where they differ the block's signatures by that
signer are verified again, inline, with the state's key.

With verifying threads the interpreter's switch interval is 0.1 ms instead of 5 ms
while an audit runs: a verifying thread needs the GIL for a moment after each
signature, and while the replay or the reader holds it, the thread waits for the
interval to pass. Measured on the first 150 blocks of the benchmark's chain
(docs/audit.md): 6,198 transactions/s at 0.5 ms, 8,938 at 0.1 ms, 9,178 at 0.01 ms.
Worker processes have their own GIL, so the interval stays as it is.

The cyclic garbage collector is paused while an audit runs and the young generations
are collected every ``COLLECT_EVERY`` blocks instead: the decoded blocks waiting for
their verdicts (tens of thousands of objects) are otherwise walked again at every
collection. The audit makes no cycles to speak of (the peak memory of a 200,000-payment
audit is the same either way), and its parent process spends 2 to 7 µs a transaction
less (32-35 against 36-39 µs, measured in pairs on that chain).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from straits.ledger.v1 import block_pb2 as block_pb

from clients.audit.checks import CHECKS, BlockContext, Check
from clients.audit.records import BlockRecord
from clients.audit.signatures import BlockWork, SignaturePool, Task
from clients.audit.sources import HeadState, Source
from ledger import codec
from ledger.errors import InvalidBlockError, StraitsError
from ledger.execute import AlreadyVerified, execute
from ledger.genesis import Genesis
from ledger.keys import PublicKey
from ledger.state import State
from ledger.transaction import Transaction
from ledger.verifier import BatchVerifier

PAGE = 64  # blocks a read
SWITCH_INTERVAL_S = 0.0001
AHEAD = 16  # decoded blocks waiting for each next stage
# Transactions in one worker task: enough that handing it over costs little beside
# verifying it (about 0.25 s of one core), few enough that every worker has work.
TASK_TRANSACTIONS = 2_000
TASKS_AHEAD = 4  # tasks per worker handed out before the replay waits for the first
COLLECT_EVERY = 64  # blocks between collections of the young generations
Progress = Callable[[int, int, int], None]  # blocks done, transactions done, head height


@dataclass(frozen=True)
class Finding:
    height: int
    check: str
    detail: str


@dataclass
class Report:
    source: str
    head: int = 0
    blocks: int = 0
    transactions: int = 0
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    checks: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.findings


@dataclass
class _Decoded:
    record: BlockRecord
    header: block_pb.BlockHeader | None
    header_error: str
    hash: bytes
    ids: tuple[bytes, ...]
    transactions: tuple[Transaction | None, ...]
    decode_errors: dict[int, str]
    verdicts: list[bool] = field(default_factory=list)
    keys_used: dict[str, PublicKey | None] = field(default_factory=dict)


_END = object()


def decode(record: BlockRecord, chain_id: str) -> _Decoded:
    header: block_pb.BlockHeader | None = None
    header_error = ""
    try:
        header = codec.decode(block_pb.BlockHeader, record.header)
    except StraitsError as error:
        header_error = str(error)
    transactions: list[Transaction | None] = []
    ids: list[bytes] = []
    errors: dict[int, str] = {}
    for index, signed in enumerate(record.transactions):
        try:
            t = Transaction.from_proto(chain_id, signed)  # type: ignore[arg-type]
        except StraitsError as error:
            errors[index] = str(error)
            transactions.append(None)
            ids.append(codec.transaction_id(chain_id, signed.body))
        else:
            transactions.append(t)
            ids.append(t.id)
    return _Decoded(
        record,
        header,
        header_error,
        codec.block_hash(chain_id, record.header),
        tuple(ids),
        tuple(transactions),
        errors,
    )


class Auditor:
    """Audits sources against one genesis; ``checks`` defaults to every check there is."""

    def __init__(
        self,
        genesis: Genesis,
        verifier: BatchVerifier | SignaturePool,
        checks: Sequence[tuple[str, Check]] = CHECKS,
        progress: Progress | None = None,
    ) -> None:
        self._genesis = genesis
        self._verifier = verifier
        self._checks = tuple(checks)
        self._progress = progress

    def run(self, source: Source) -> Report:
        with _collector_paused():
            if isinstance(self._verifier, SignaturePool):
                return self._run(source)
            previous = sys.getswitchinterval()
            sys.setswitchinterval(SWITCH_INTERVAL_S)
            try:
                return self._run(source)
            finally:
                sys.setswitchinterval(previous)

    def _run(self, source: Source) -> Report:
        report = Report(source.name, checks=(*(name for name, _ in self._checks), "head_state"))
        started = time.perf_counter()
        head = source.head_height()
        report.head = head
        state, parent, expected, diverged = self._walk(source, 1, head, report)
        if expected <= head:
            missing = str(head) if expected == head else f"{expected}..{head}"
            self._file(report, expected, "height",
                       [f"block {missing} missing: the source says its head is {head}"])
        claimed = source.head_state()
        if claimed is not None and claimed.height > head:
            # A validator keeps committing while it is audited: the blocks up to the
            # height its accounts describe are audited before they are compared.
            report.head = claimed.height
            state, parent, expected, diverged = self._walk(
                source, expected, claimed.height, report, state, parent, diverged
            )
        if claimed is not None:
            self._file(report, claimed.height, "head_state",
                       compare_head(claimed, state, expected - 1))
        report.seconds = time.perf_counter() - started
        return report

    def _file(self, report: Report, height: int, check: str, details: Sequence[str]) -> None:
        report.findings.extend(Finding(height, check, d) for d in details)

    def _walk(
        self,
        source: Source,
        first: int,
        last: int,
        report: Report,
        state: State | None = None,
        parent: bytes | None = None,
        diverged: bool = False,
    ) -> tuple[State, bytes, int, bool]:
        state = state if state is not None else State.genesis(self._genesis)
        parent = parent if parent is not None else self._genesis.hash
        expected = first
        for block in self._verified(self._decoded(source, first, last), self._verifier):
            before = state
            self._recheck_keys(block, before)
            held = block.record.height
            if held > expected:
                missing = str(expected) if held == expected + 1 else f"{expected}..{held - 1}"
                self._file(report, expected, "height", [
                    f"block {missing} missing: the next block the source holds is {held}"])
            ctx, state = self._replay(block, before, parent, expected, diverged)
            for name, check in self._checks:
                self._file(report, block.record.height, name, list(check(ctx)))
            diverged = diverged or bool(ctx.replay_error) or (
                ctx.header is not None and ctx.header.state_root != ctx.execution.state_root)
            parent = block.hash
            expected = block.record.height + 1
            report.blocks += 1
            report.transactions += len(block.transactions)
            if report.blocks % COLLECT_EVERY == 0:
                gc.collect(1)
            if self._progress is not None:
                self._progress(report.blocks, report.transactions, max(report.head, last))
        return state, parent, expected, diverged

    # --- stages ---------------------------------------------------------------------

    def _decoded(self, source: Source, first: int, last: int) -> Iterator[_Decoded]:
        chain_id = self._genesis.chain_id
        out: queue.Queue[object] = queue.Queue(AHEAD)
        stop = threading.Event()

        def read() -> None:
            try:
                height = first
                while height <= last and not stop.is_set():
                    records = source.blocks(height, min(PAGE, last - height + 1))
                    if not records:
                        break
                    for record in records:
                        out.put(decode(record, chain_id))
                    height = records[-1].height + 1
                out.put(_END)
            except BaseException as error:  # handed to the calling thread, raised there
                out.put(error)

        yield from _drain(read, out, stop)

    def _verified(
        self, blocks: Iterator[_Decoded], verifier: BatchVerifier | SignaturePool
    ) -> Iterator[_Decoded]:
        if isinstance(verifier, SignaturePool):
            return self._verified_by_workers(blocks, verifier)
        return self._verified_by_threads(blocks, verifier)

    def _verified_by_workers(
        self, blocks: Iterator[_Decoded], pool: SignaturePool
    ) -> Iterator[_Decoded]:
        """Blocks in order, each with its verdicts from the worker processes.

        Blocks are grouped into tasks of about ``TASK_TRANSACTIONS``; a task never spans
        a change of keys, so one key map serves all its blocks. Up to ``TASKS_AHEAD``
        tasks per worker are out before the first block is handed on."""
        keys: dict[str, PublicKey] = {p.id: p.key for p in self._genesis.participants}
        pending: deque[tuple[_Decoded, Task, int]] = deque()
        group: list[_Decoded] = []
        work: list[BlockWork] = []
        grouped = 0
        ahead = TASKS_AHEAD * pool.workers * TASK_TRANSACTIONS
        out = 0  # transactions handed out and not yet handed on

        def submit() -> None:
            nonlocal group, work, grouped
            if group:
                task = pool.submit(keys, work)
                pending.extend((block, task, i) for i, block in enumerate(group))
                group, work, grouped = [], [], 0  # the pool pickles the lists later

        try:
            for block in blocks:
                present = [t for t in block.transactions if t is not None]
                signers = tuple([t.body.signer for t in present])
                block.keys_used = {s: keys.get(s) for s in set(signers)}
                group.append(block)
                work.append((signers, [t.body_bytes for t in present],
                             [t.signature for t in present]))
                grouped += len(present)
                out += len(block.transactions)
                admissions = [t for t in present if t.kind == "admit_bank"]
                if admissions or grouped >= TASK_TRANSACTIONS:
                    submit()  # with the keys before this block's admissions
                _admit(keys, admissions)
                while pending and out > ahead:
                    out -= len(pending[0][0].transactions)
                    yield _with_verdicts(*pending.popleft())
            submit()
            while pending:
                yield _with_verdicts(*pending.popleft())
        finally:
            # Verdicts not taken are dropped with the pool; the reader stops here.
            blocks.close()  # type: ignore[attr-defined]

    def _verified_by_threads(
        self, blocks: Iterator[_Decoded], verifier: BatchVerifier
    ) -> Iterator[_Decoded]:
        keys: dict[str, PublicKey] = {p.id: p.key for p in self._genesis.participants}
        out: queue.Queue[object] = queue.Queue(AHEAD)
        stop = threading.Event()

        def verify() -> None:
            try:
                for block in blocks:
                    if stop.is_set():
                        break
                    self._verify_block(verifier, block, keys)
                    out.put(block)
                out.put(_END)
            except BaseException as error:
                out.put(error)
            finally:
                # Stops the reader too, from the thread that iterates it.
                blocks.close()  # type: ignore[attr-defined]

        yield from _drain(verify, out, stop)

    def _verify_block(
        self, verifier: BatchVerifier, block: _Decoded, keys: dict[str, PublicKey]
    ) -> None:
        present = [t for t in block.transactions if t is not None]
        verdicts = iter(verifier.verify_transactions(present, keys.get))
        block.verdicts = [True if t is None else next(verdicts) for t in block.transactions]
        block.keys_used = {t.signer: keys.get(t.signer) for t in present}
        _admit(keys, [t for t in present if t.kind == "admit_bank"])

    def _recheck_keys(self, block: _Decoded, before: State) -> None:
        participants = before.participants
        stale = set()
        for signer, used in block.keys_used.items():
            participant = participants.get(signer)
            key = participant.key if participant is not None else None
            if (key is None) != (used is None) or (
                key is not None and used is not None and key.fingerprint != used.fingerprint
            ):
                stale.add(signer)
        if not stale:
            return
        for index, t in enumerate(block.transactions):
            if t is not None and t.signer in stale:
                participant = participants.get(t.signer)
                block.verdicts[index] = participant is not None and participant.key.verify(
                    t.signature, t.signed)

    def _replay(
        self, block: _Decoded, before: State, parent: bytes, expected: int, diverged: bool
    ) -> tuple[BlockContext, State]:
        present = [t for t in block.transactions if t is not None]
        replay_error = ""
        try:
            execution = execute(before, present, verify=AlreadyVerified(), strict=True)
        except InvalidBlockError as error:
            replay_error = str(error)
            execution = execute(before, present, verify=AlreadyVerified(), strict=False)
        header = block.header
        after = dataclasses.replace(
            execution.state,
            head_hash=block.hash,
            timestamp_ms=header.timestamp_ms if header is not None else before.timestamp_ms,
        )
        execution = dataclasses.replace(execution, state=after)
        ctx = BlockContext(
            record=block.record,
            expected_height=expected,
            before=before,
            parent_hash=parent,
            header=header,
            header_error=block.header_error,
            hash=block.hash,
            ids=block.ids,
            transactions=block.transactions,
            decode_errors=block.decode_errors,
            verdicts=tuple(block.verdicts),
            validators=before.validators_for(before.height + 1),
            execution=execution,
            replay_error=replay_error,
            diverged=diverged,
        )
        return ctx, after


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _admit(keys: dict[str, PublicKey], admissions: Sequence[Transaction]) -> None:
    for t in admissions:
        if t.body.admit_bank.bank not in keys:
            # A key the chain may admit; the replayed state has the last word.
            with contextlib.suppress(StraitsError):
                keys[t.body.admit_bank.bank] = PublicKey.from_proto(t.body.admit_bank.key)


def _with_verdicts(block: _Decoded, task: Task, index: int) -> _Decoded:
    answer = task.result()[index]
    if block.decode_errors:
        verdicts = iter(answer)
        # An undecodable transaction was not verified; the transactions check names it.
        block.verdicts = [True if t is None else next(verdicts) == 1
                          for t in block.transactions]
    else:
        block.verdicts = list(map(bool, answer))
    return block


def _drain(
    work: Callable[[], None], out: queue.Queue[object], stop: threading.Event
) -> Iterator[_Decoded]:
    thread = threading.Thread(target=work, name="audit-stage", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        # Unblock a producer waiting on a full queue, then let it finish.
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                out.get(timeout=0.05)
        thread.join()


def compare_head(claimed: HeadState, state: State, held_to: int) -> list[str]:
    """What the source says its head state is, against the state the replay reached
    after the blocks the source holds up to ``held_to``."""
    found = []
    if claimed.height != held_to:
        found.append(f"the source's state is at height {claimed.height}, its blocks end at "
                     f"{held_to}")
        return found
    replayed_out: dict[str, int] = {}
    for payer_queue in state.queues.values():
        for entry in payer_queue:
            replayed_out[entry.payer] = replayed_out.get(entry.payer, 0) + entry.amount
    for bank in sorted(set(claimed.balances) | set(state.balances)):
        held, replayed = claimed.balances.get(bank), state.balances.get(bank)
        if held != replayed:
            found.append(f"{bank}: balance {held} held, replay gives {replayed}")
        held_out = claimed.queued_out.get(bank, 0)
        if held_out != replayed_out.get(bank, 0):
            found.append(f"{bank}: {held_out} queued out held, replay gives "
                         f"{replayed_out.get(bank, 0)}")
    totals = (("issued", claimed.issued, state.issued),
              ("redeemed", claimed.redeemed, state.redeemed),
              ("next_seq", claimed.next_seq, state.next_seq))
    for name, held, replayed in totals:
        if held is not None and held != replayed:
            found.append(f"{name} {held} held, replay gives {replayed}")
    if claimed.queue is not None:
        replayed_queue = {
            (e.seq, e.transfer_id, e.payer, e.payee, e.amount, e.priority, e.queued_height, e.held)
            for q in state.queues.values() for e in q
        }
        for row in sorted(set(claimed.queue) ^ replayed_queue):
            side = "replayed but not held" if row in replayed_queue else "held but not replayed"
            found.append(f"queued transfer seq {row[0]} ({row[1].hex()[:16]}): {side}")
    if claimed.suspended is not None:
        for account, held_flag in sorted(claimed.suspended.items()):
            participant = state.participants.get(account)
            if participant is None:
                found.append(f"account {account!r} held, unknown to the replay")
            elif participant.suspended != held_flag:
                found.append(f"{account}: suspended={held_flag} held, replay gives "
                             f"{participant.suspended}")
    return found
