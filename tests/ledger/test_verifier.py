"""The batch verifier: right verdicts in order, bad items isolated, cache proven by counters."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

import pytest

from ledger.keys import PublicKey
from ledger.transaction import Transaction
from ledger.verifier import BatchVerifier, Item, verify_here
from tests.vectors.samples import ALPHA_BANK, BETA_BANK, ed25519_key, p256_key, signed_transfers

KEYS = [ed25519_key(n) for n in range(1, 5)] + [p256_key(n) for n in range(1, 5)]


def _spoil(item: Item, how: str) -> Item:
    key, message, signature = item
    if how == "flipped_bit":
        return key, message, bytes([signature[0] ^ 1]) + signature[1:]
    if how == "other_message":
        return key, message + b"!", signature
    if how == "other_key":
        other = KEYS[(KEYS.index(next(k for k in KEYS if k.public_key == key)) + 1) % len(KEYS)]
        return other.public_key, message, signature
    if how == "truncated":
        return key, message, signature[:-1]
    if how == "empty":
        return key, message, b""
    if how == "garbage":
        return key, message, b"\x30\x82" + bytes(300)
    raise ValueError(how)


SPOILS = ("flipped_bit", "other_message", "other_key", "truncated", "empty", "garbage")


def _batch(size: int, seed: int) -> tuple[list[Item], list[bool]]:
    """``size`` items signed by a mix of Ed25519 and P-256 keys, ~10% spoiled at seeded spots."""
    rng = random.Random(seed)
    items: list[Item] = []
    expected: list[bool] = []
    for i in range(size):
        signer = KEYS[rng.randrange(len(KEYS))]
        message = f"payment {i} of batch {seed}".encode()
        item = (signer.public_key, message, signer.sign(message))
        good = rng.random() >= 0.1
        items.append(item if good else _spoil(item, SPOILS[rng.randrange(len(SPOILS))]))
        expected.append(good)
    return items, expected


@pytest.fixture
def verifier():
    with BatchVerifier(workers=2) as v:
        yield v


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bad_signatures_in_a_large_mixed_batch_are_each_found_and_spoil_no_neighbour(
    verifier, seed
):
    items, expected = _batch(3000, seed)
    verdicts = verifier.verify(items)
    wrong = [i for i, (got, want) in enumerate(zip(verdicts, expected, strict=True)) if got != want]
    assert not wrong, f"seed {seed}: wrong verdicts at positions {wrong[:20]}"
    assert verifier.stats().failures == expected.count(False)


def test_ed25519_and_p256_items_side_by_side_each_verify_with_their_own_key(verifier):
    ed, p = ed25519_key(1), p256_key(1)
    message = b"same payment, two banks' HSMs"
    items = [
        (ed.public_key, message, ed.sign(message)),
        (p.public_key, message, p.sign(message)),
        (ed.public_key, message, p.sign(message)),
        (p.public_key, message, ed.sign(message)),
    ]
    assert verifier.verify(items * 50) == [True, True, False, False] * 50


def test_malformed_signature_bytes_give_false_never_an_exception(verifier):
    for key in (ed25519_key(1), p256_key(1)):
        good = key.sign(b"m")
        for bad in (b"", b"\x00", good[:-1], good + b"\x00", bytes(64), bytes(1000)):
            assert verifier.verify([(key.public_key, b"m", bad)]) == [False], (key.type, bad.hex())


def test_an_empty_batch_gives_no_verdicts(verifier):
    assert verifier.verify([]) == []
    assert verifier.stats().verified == 0


def test_a_transaction_verified_at_admission_is_not_verified_again_inside_a_block(verifier):
    alpha = ed25519_key(1)
    txs = signed_transfers(20, alpha)
    admission = verifier.verify([(alpha.public_key, tx.signed, tx.signature) for tx in txs])
    assert admission == [True] * 20
    after_admission = verifier.stats()

    in_block = verifier.verify_transactions(txs, {ALPHA_BANK: alpha.public_key}.get)

    stats = verifier.stats()
    assert in_block == [True] * 20
    assert stats.verified == after_admission.verified, "block re-verified admitted transactions"
    assert stats.cache_hits == after_admission.cache_hits + 20


def test_failures_are_never_cached_so_a_bad_signature_is_checked_every_time(verifier):
    alpha = ed25519_key(1)
    message = b"forged payment"
    forged = (alpha.public_key, message, ed25519_key(2).sign(message))
    assert verifier.verify([forged]) == [False]
    assert verifier.verify([forged]) == [False]
    stats = verifier.stats()
    assert (stats.verified, stats.cache_hits, stats.failures) == (2, 0, 2)


def test_a_cached_transaction_with_another_signature_is_checked_afresh(verifier):
    alpha = ed25519_key(1)
    (tx,) = signed_transfers(1, alpha)
    keys = {ALPHA_BANK: alpha.public_key}.get
    assert verifier.verify_transactions([tx], keys) == [True]
    forged = Transaction(tx.id, tx.body, tx.body_bytes, ed25519_key(2).sign(tx.signed), tx.chain_id)
    assert verifier.verify_transactions([forged], keys) == [False]
    assert verifier.verify_transactions([tx], {ALPHA_BANK: ed25519_key(2).public_key}.get) == [
        False
    ]
    assert verifier.stats().cache_hits == 0


def test_a_signer_without_a_key_gets_false_and_the_others_are_still_judged(verifier):
    alpha = ed25519_key(1)
    txs = signed_transfers(3, alpha) + signed_transfers(2, ed25519_key(2), payer=BETA_BANK)
    verdicts = verifier.verify_transactions(txs, {ALPHA_BANK: alpha.public_key}.get)
    assert verdicts == [True, True, True, False, False]
    assert verifier.stats().failures == 2


def test_the_cache_is_bounded_and_forgets_the_oldest_first():
    alpha = ed25519_key(1)
    txs = signed_transfers(20, alpha)
    keys = {ALPHA_BANK: alpha.public_key}.get
    with BatchVerifier(workers=2, cache_size=10) as verifier:
        verifier.verify_transactions(txs[:10], keys)
        verifier.verify_transactions(txs[10:], keys)
        before = verifier.stats()
        assert verifier.verify_transactions(txs[10:], keys) == [True] * 10
        assert verifier.stats().cache_hits == before.cache_hits + 10, "newest ten were forgotten"
        assert verifier.verify_transactions(txs[:10], keys) == [True] * 10
        assert verifier.stats().verified == before.verified + 10, "oldest ten were still cached"


def test_with_the_cache_disabled_every_item_is_verified():
    alpha = ed25519_key(1)
    txs = signed_transfers(5, alpha)
    with BatchVerifier(workers=2, cache_size=0) as verifier:
        for _ in range(3):
            verifier.verify_transactions(txs, {ALPHA_BANK: alpha.public_key}.get)
        assert verifier.stats() == type(verifier.stats())(verified=15, cache_hits=0, failures=0)


@dataclass(frozen=True)
class _ThreadRecordingKey(PublicKey):
    """A real public key that also notes which thread verified with it."""

    def verify(self, signature: bytes, message: bytes) -> bool:
        _threads_seen.add(threading.get_ident())
        return super().verify(signature, message)


_threads_seen: set[int] = set()


def _recorded_items(count: int) -> list[Item]:
    alpha = ed25519_key(1)
    key = _ThreadRecordingKey(alpha.public_key.type, alpha.public_key.data)
    return [(key, bytes([i]), alpha.sign(bytes([i]))) for i in range(count)]


def test_a_tiny_batch_is_verified_inline_on_the_callers_thread():
    _threads_seen.clear()
    with BatchVerifier(workers=2, inline_below=4) as verifier:
        assert verifier.verify(_recorded_items(3)) == [True] * 3
    assert _threads_seen == {threading.get_ident()}


def test_a_large_batch_is_spread_over_the_workers():
    _threads_seen.clear()
    with BatchVerifier(workers=2, inline_below=4) as verifier:
        assert verifier.verify(_recorded_items(64)) == [True] * 64
    assert len(_threads_seen) == 2, "expected the caller and one pool thread to share the batch"
    assert threading.get_ident() in _threads_seen


def test_a_single_worker_verifier_needs_no_pool_and_gives_the_same_verdicts():
    items, expected = _batch(200, seed=9)
    with BatchVerifier(workers=1) as verifier:
        assert verifier.verify(items) == expected


def test_many_callers_at_once_each_get_their_own_verdicts(verifier):
    batches = [_batch(150, seed) for seed in range(10, 16)]
    results: dict[int, list[bool]] = {}

    def call(n: int) -> None:
        results[n] = verifier.verify(batches[n][0])

    threads = [threading.Thread(target=call, args=(n,)) for n in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n, (_, expected) in enumerate(batches):
        assert results[n] == expected, f"caller {n} got someone else's or wrong verdicts"


def test_verifying_before_start_is_a_programming_error():
    with pytest.raises(RuntimeError, match="start"):
        BatchVerifier(workers=2).verify(_batch(4, seed=1)[0])


# --- submitted batches: verified later on the pool, waiting callers first -------------


@pytest.mark.parametrize("workers", [1, 2])
def test_a_submitted_batch_gets_the_verdicts_verify_would_give(workers):
    alpha = ed25519_key(1)
    made = signed_transfers(155, alpha)
    good = made[:150]
    forged = [
        Transaction(t.id, t.body, t.body_bytes, ed25519_key(2).sign(t.signed), t.chain_id)
        for t in made[150:]
    ]
    strangers = signed_transfers(3, ed25519_key(3), payer=BETA_BANK)
    txs = good[:70] + forged + strangers + good[70:]
    expected = [True] * 70 + [False] * 8 + [True] * 80
    keys = {ALPHA_BANK: alpha.public_key}.get
    with BatchVerifier(workers=workers, chunk_size=16) as verifier:
        pending = verifier.submit_transactions(txs, keys)
        assert pending.result() == expected
        assert pending.result() == expected, "a second result() answers the same"
        stats = verifier.stats()
        assert (stats.verified, stats.cache_hits, stats.failures) == (155, 0, 8)
        # The cache serves submitted and waited-for checks alike.
        assert verifier.verify_transactions(good, keys) == [True] * 150
        assert verifier.stats().cache_hits == 150


def test_a_waiting_caller_is_served_before_submitted_batches():
    """A block being validated waits behind at most the chunks already being verified,
    not behind everything admission has submitted."""
    release = threading.Event()
    at_gate = threading.Semaphore(0)
    order: list[bool] = []  # per verification: was it one of the waiting caller's?

    @dataclass(frozen=True)
    class GatedKey(PublicKey):
        def verify(self, signature: bytes, message: bytes) -> bool:
            if not release.is_set():
                at_gate.release()
                release.wait(10)
            order.append(message.startswith(b"waited-"))
            return super().verify(signature, message)

    alpha = ed25519_key(1)
    gated = GatedKey(alpha.public_key.type, alpha.public_key.data)
    waited_items = [(gated, b"waited-%d" % i, alpha.sign(b"waited-%d" % i)) for i in range(4)]
    waited: list[list[bool]] = []
    # With engines the caller verifies nothing itself: every chunk goes through the pool.
    with BatchVerifier(
        workers=2, chunk_size=1, cache_size=0, engines=lambda: verify_here
    ) as verifier:
        # Twenty one-transaction chunks; the two workers each take one and stop at the gate.
        pending = verifier.submit_transactions(signed_transfers(20, alpha), lambda _: gated)
        assert at_gate.acquire(timeout=10) and at_gate.acquire(timeout=10)
        caller = threading.Thread(target=lambda: waited.append(verifier.verify(waited_items)))
        caller.start()
        deadline = time.monotonic() + 10
        while len(verifier._pool._urgent) < 2 and time.monotonic() < deadline:
            time.sleep(0.001)  # until the caller's two chunks are queued
        release.set()
        caller.join(10)
        assert pending.result() == [True] * 20
    assert waited == [[True] * 4]
    last_waited = max(i for i, mine in enumerate(order) if mine)
    # FIFO would put the caller's two chunks after the eighteen submitted ones still
    # queued (its last check at position 21 or later); served first, they come right
    # after the two held at the gate.
    assert last_waited < 8, order
