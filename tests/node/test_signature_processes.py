"""A validator's signatures checked in worker processes: the same verdicts as checking in
the node, a worker that dies costs no verdict, and no worker outlives its engine."""

from __future__ import annotations

import os
import signal
import time

import pytest

from ledger.keys import KeyType, PublicKey
from ledger.verifier import BatchVerifier, Item, verify_here
from services.validator.signature_processes import ProcessEngine
from tests.vectors.samples import ALPHA_BANK, ed25519_key, p256_key, signed_transfers


def _items() -> list[Item]:
    """Good Ed25519 and P-256 signatures, and every way an item can be bad."""
    ed, p256, other = ed25519_key(1), p256_key(1), ed25519_key(2)
    items: list[Item] = []
    for n in range(40):
        message = b"payment %d" % n
        key = ed if n % 2 else p256
        items.append((key.public_key, message, key.sign(message)))
    message = b"the one that is spoiled"
    good = ed.sign(message)
    items += [
        (ed.public_key, message, bytes([good[0] ^ 1]) + good[1:]),  # a flipped bit
        (ed.public_key, message + b"!", good),  # another message
        (other.public_key, message, good),  # another key
        (ed.public_key, message, good[:-1]),  # truncated
        (ed.public_key, message, b""),  # empty
        (p256.public_key, message, b"\x30\x82" + bytes(300)),  # garbage DER
    ]
    return items


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): it has ended if its state says so.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_worker_gives_the_verdicts_the_node_would():
    items = _items()
    engine = ProcessEngine()
    try:
        assert engine(items) == verify_here(items)
        assert engine(items)[:40] == [True] * 40 and engine(items)[40:] == [False] * 6
        assert engine([]) == []
    finally:
        engine.close()


def test_a_key_the_worker_cannot_parse_verifies_nothing():
    # An Ed25519 key of the right length always parses, so a P-256 point that is not on
    # the curve stands in: it is refused where it enters and never signs anything.
    bad = object.__new__(PublicKey)
    object.__setattr__(bad, "type", KeyType.ECDSA_P256)
    object.__setattr__(bad, "data", b"\x04" + bytes(64))
    engine = ProcessEngine()
    try:
        good = _items()[:2]
        assert engine([(bad, b"m", b"s"), *good]) == [False, True, True]
    finally:
        engine.close()


def test_a_dead_worker_costs_no_verdict_and_is_replaced():
    items = _items()
    engine = ProcessEngine()
    try:
        assert engine(items) == verify_here(items)  # a worker that has been working
        first = engine._process.pid  # type: ignore[union-attr]
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(first) and time.monotonic() < deadline:
            time.sleep(0.01)
        # The chunk in hand is checked in the node; the next goes to a new worker.
        assert engine(items) == verify_here(items)
        assert engine.restarts == 1
        assert engine(items) == verify_here(items)
        assert engine._process is not None and engine._process.pid != first
    finally:
        engine.close()


def test_closing_the_engine_ends_its_worker():
    engine = ProcessEngine()
    pid = engine._process.pid  # type: ignore[union-attr]
    assert _alive(pid)
    engine.close()
    assert not _alive(pid)


@pytest.mark.parametrize("submitted", [False, True])
def test_the_verifier_with_worker_processes_answers_as_with_threads(submitted):
    alpha = ed25519_key(1)
    txs = signed_transfers(200, alpha)
    forged = [t.__class__(t.id, t.body, t.body_bytes, ed25519_key(2).sign(t.signed), t.chain_id)
              for t in txs[:5]]
    batch = forged + txs[5:]
    keys = {ALPHA_BANK: alpha.public_key}.get
    checked_by: dict[int, int] = {}  # per engine: signatures its worker process checked

    class Counting(ProcessEngine):
        def __call__(self, items):  # type: ignore[no-untyped-def]
            checked_by[id(self)] = checked_by.get(id(self), 0) + len(items)
            return super().__call__(items)

    with BatchVerifier(workers=2, chunk_size=32, engines=Counting) as verifier:
        if submitted:
            verdicts = verifier.submit_transactions(batch, keys).result()
        else:
            verdicts = verifier.verify_transactions(batch, keys)
        assert verdicts == [False] * 5 + [True] * 195
        assert verifier.stats().verified == 200
    # Every signature went to a worker process (the caller checked none itself), and
    # both workers took a share.
    assert sum(checked_by.values()) == 200
    assert len(checked_by) == 2 and min(checked_by.values()) > 0


def test_a_worker_that_stops_answering_is_replaced_after_its_deadline(monkeypatch):
    from services.validator import signature_processes

    monkeypatch.setattr(signature_processes, "ANSWER_S", 0.3)
    items = _items()
    engine = ProcessEngine()
    try:
        assert engine(items) == verify_here(items)  # a worker that has been working
        stuck = engine._process.pid  # type: ignore[union-attr]
        os.kill(stuck, signal.SIGSTOP)  # alive, holding its pipe, answering nothing
        started = time.monotonic()
        assert engine(items) == verify_here(items)
        assert time.monotonic() - started < 10, "waited far past the deadline"
        assert engine.restarts == 1 and not _alive(stuck)
        assert engine(items) == verify_here(items)
        assert engine._process is not None and engine._process.pid != stuck
    finally:
        engine.close()


def test_a_request_larger_than_a_pipe_is_answered():
    key = ed25519_key(1)
    items = [(key.public_key, bytes(300) + b"%d" % i, key.sign(bytes(300) + b"%d" % i))
             for i in range(1000)]  # about 400 KB pickled, a pipe holds 64 KB
    engine = ProcessEngine()
    try:
        assert engine(items) == [True] * 1000
        assert engine.restarts == 0
    finally:
        engine.close()


def test_a_worker_that_cannot_run_is_not_started_again_for_every_chunk(monkeypatch):
    from services.validator import signature_processes

    # A worker whose module cannot be found exits before its first answer.
    monkeypatch.setattr(signature_processes, "__name__", "no_such_module_here")
    items = _items()
    engine = ProcessEngine()
    try:
        for _ in range(3):
            assert engine(items) == verify_here(items), "the node checks the chunk itself"
        assert engine.restarts == 1, "one failure, then no new worker until the retry"
        assert engine._process is None
    finally:
        engine.close()
