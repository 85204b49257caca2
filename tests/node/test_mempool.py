"""The validator's mempool: bounded, ordered, idempotent, and loses nothing on a failed round."""

from __future__ import annotations

import pytest
from straits.ledger.v1 import transaction_pb2 as tx_pb

from ledger.keys import PrivateKey
from ledger.transaction import Transaction, sign
from services.validator.mempool import Admission, Mempool

CHAIN = "straits-test"
PAYER_KEY = PrivateKey.from_seed(bytes(32))


def payment(nonce: int, *, valid_until: int = 100) -> Transaction:
    body = tx_pb.TransactionBody(
        signer="bank-a",
        valid_until_height=valid_until,
        nonce=nonce,
        transfer=tx_pb.Transfer(payee="bank-b", amount=100, priority=tx_pb.PRIORITY_NORMAL),
    )
    return sign(CHAIN, PAYER_KEY, body)


def test_a_full_pool_refuses_the_overflow_and_keeps_what_it_admitted() -> None:
    pool = Mempool(capacity=3)
    batch = [payment(n) for n in range(5)]
    assert pool.add(batch) == [Admission.ADDED] * 3 + [Admission.FULL] * 2
    assert [t.id for t in pool.take(10, height=1)] == [t.id for t in batch[:3]]


def test_a_retried_payment_is_a_duplicate_not_a_second_entry() -> None:
    pool = Mempool(capacity=10)
    first = payment(1)
    pool.add([first])
    assert pool.add([first]) == [Admission.DUPLICATE]
    assert len(pool) == 1


def test_the_proposer_takes_oldest_first_and_nothing_is_lost_until_committed() -> None:
    pool = Mempool(capacity=10)
    batch = [payment(n) for n in range(4)]
    pool.add(batch)
    proposal = pool.take(2, height=1)
    assert [t.id for t in proposal] == [batch[0].id, batch[1].id]
    # The round failed: the same transactions are offered again.
    assert [t.id for t in pool.take(2, height=1)] == [batch[0].id, batch[1].id]
    pool.remove(t.id for t in proposal)
    assert [t.id for t in pool.take(10, height=2)] == [batch[2].id, batch[3].id]


def test_expired_payments_are_neither_proposed_nor_kept() -> None:
    pool = Mempool(capacity=10)
    short, long_lived = payment(1, valid_until=5), payment(2, valid_until=50)
    pool.add([short, long_lived])
    assert [t.id for t in pool.take(10, height=6)] == [long_lived.id]
    assert [t.id for t in pool.prune_expired(6)] == [short.id]
    assert short.id not in pool and long_lived.id in pool


def test_pruning_drops_what_expired_once_and_nothing_committed_or_still_valid() -> None:
    pool = Mempool(capacity=100)
    payments = [payment(n, valid_until=5 + n % 4) for n in range(40)]  # until 5, 6, 7, 8
    pool.add(payments)
    committed = {t.id for t in payments[:10]}
    pool.remove(committed)

    expired = pool.prune_expired(7)  # until 5 and 6 can no longer be included

    assert [t.id for t in expired] == [
        t.id for until in (5, 6) for t in payments[10:] if t.body.valid_until_height == until]
    assert pool.prune_expired(7) == []
    assert {t.id for t in pool.take(100, height=7)} == {
        t.id for t in payments[10:] if t.body.valid_until_height >= 7}
    # Re-admitted after being pruned, a payment is pruned again when its height passes.
    pool.add([expired[0]])
    assert pool.prune_expired(8) == [expired[0]] + [
        t for t in payments[10:] if t.body.valid_until_height == 7]


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive capacity"):
        Mempool(capacity=0)
