"""Admission stage by stage: each keeps what passes, refuses the rest with the error that
says why (the class, the field and the detail a sender can act on), and recognises a
retry; the whole chain answers every item of a batch, in order, once."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import grpc
import pytest
from straits.ledger.v1 import transaction_pb2 as tx_pb

from ledger.chain import Chain
from ledger.errors import (
    BadSignatureError,
    ExpiredError,
    InsufficientFundsError,
    MalformedTransactionError,
    NotPermittedError,
    SuspendedError,
    UnknownAccountError,
    UnknownSignerError,
)
from ledger.execute import InlineCheck
from ledger.genesis import Genesis
from ledger.state import State
from ledger.store import MemoryStore
from ledger.transaction import Transaction
from ledger.verifier import BatchVerifier
from services.common.errors import OverloadedError
from services.validator.admission import (
    ACCEPTED,
    COMMITTED,
    PENDING,
    REFUSED,
    Admitter,
    Candidate,
    Sifted,
    add_to_mempool,
    check_business_rules,
    check_chain,
    check_permission,
    check_signatures,
    check_structure,
)
from services.validator.mempool import Mempool
from tests.ledger.conftest import Chain as Signer
from tests.ledger.conftest import genesis_dict

NOTHING_PENDING: frozenset[bytes] = frozenset()


def candidates(*transactions: Transaction) -> list[Candidate]:
    return [Candidate(index, tx) for index, tx in enumerate(transactions)]


def kept_ids(sifted: Sifted) -> list[bytes]:
    return [c.transaction.id for c in sifted.kept]


def refusal(sifted: Sifted) -> tuple[type, str | None, str]:
    [refused] = sifted.refused
    return type(refused.error), refused.error.field, refused.error.detail


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
def verifier() -> Iterator[BatchVerifier]:
    with BatchVerifier(workers=2) as verifier:
        yield verifier


# --- structure ----------------------------------------------------------------------


def test_structure_refuses_undecodable_bytes_and_out_of_range_fields_keeping_the_rest(
    signer: Signer,
) -> None:
    good = signer.transfer("bank-a", "bank-b", 5).to_proto()
    garbage = tx_pb.SignedTransaction(body=b"\xff\x00garbage", signature=b"x")
    zero = signer.transfer("bank-a", "bank-b", 5).to_proto()
    body = tx_pb.TransactionBody.FromString(zero.body)
    body.transfer.amount = 0
    zero.body = body.SerializeToString()

    sifted = check_structure(signer.genesis.chain_id, [garbage, good, zero])

    assert [c.index for c in sifted.kept] == [1]
    assert [(r.index, r.error.code) for r in sifted.refused] == [
        (0, "malformed"),
        (2, "malformed_transaction"),
    ]
    assert sifted.refused[0].transaction_id == b"", "bytes that do not decode have no id"
    assert isinstance(sifted.refused[1].error, MalformedTransactionError)
    assert sifted.refused[1].error.field == "transfer.amount"


# --- chain and expiry ---------------------------------------------------------------


def test_chain_refuses_an_unknown_signer_and_a_transaction_outside_its_window(
    signer: Signer,
) -> None:
    stranger = dataclasses.replace(
        signer.transfer("bank-a", "bank-b", 1),
        body=tx_pb.TransactionBody(signer="bank-zz", valid_until_height=5, nonce=1),
    )
    horizon = signer.state.parameters.max_transaction_lifetime + 1
    too_far = signer.transfer("bank-a", "bank-b", 2)
    too_far.body.valid_until_height = horizon + 1
    fine = signer.transfer("bank-a", "bank-b", 3)

    for tx, error_class, field in (
        (stranger, UnknownSignerError, "signer"),
        (too_far, ExpiredError, "valid_until_height"),
    ):
        sifted = check_chain(signer.state, candidates(tx), NOTHING_PENDING)
        assert sifted.kept == ()
        assert refusal(sifted)[:2] == (error_class, field)
    assert kept_ids(check_chain(signer.state, candidates(fine), NOTHING_PENDING)) == [fine.id]


def test_chain_refuses_a_transaction_whose_last_height_has_passed(signer: Signer) -> None:
    late = signer.sign(
        "bank-a", valid_until=1, transfer=tx_pb.Transfer(payee="bank-b", amount=1, priority=1)
    )
    signer.commit(signer.issue("bank-a", 10))  # the next block is height 2

    error_class, field, detail = refusal(check_chain(signer.state, candidates(late), set()))
    assert (error_class, field) == (ExpiredError, "valid_until_height")
    assert "valid_until_height >= 2" in detail


def test_chain_answers_a_retry_of_a_committed_or_pending_transaction_as_known(
    signer: Signer,
) -> None:
    committed = signer.issue("bank-a", 10)
    signer.commit(committed)
    waiting = signer.transfer("bank-a", "bank-b", 1)

    sifted = check_chain(signer.state, candidates(committed, waiting), {waiting.id})

    assert sifted.kept == () and sifted.refused == ()
    assert [(k.index, k.transaction_id, k.status) for k in sifted.known] == [
        (0, committed.id, COMMITTED),
        (1, waiting.id, PENDING),
    ]


# --- signatures ---------------------------------------------------------------------


def test_signatures_refuses_a_forged_signature_and_one_made_for_another_chain(
    signer: Signer, verifier: BatchVerifier
) -> None:
    honest = signer.transfer("bank-a", "bank-b", 1)
    forged = dataclasses.replace(signer.transfer("bank-a", "bank-b", 2), signature=bytes(64))
    elsewhere = Signer(Genesis.from_dict(genesis_dict("another-chain")))
    replayed = Transaction.from_proto(
        signer.genesis.chain_id, elsewhere.transfer("bank-a", "bank-b", 3).to_proto()
    )

    sifted = check_signatures(signer.state, candidates(honest, forged, replayed), verifier)

    assert kept_ids(sifted) == [honest.id]
    assert [(r.index, type(r.error), r.error.field) for r in sifted.refused] == [
        (1, BadSignatureError, "signature"),
        (2, BadSignatureError, "signature"),
    ]


# --- permission ---------------------------------------------------------------------


def test_permission_a_bank_submits_only_what_it_signed(signer: Signer) -> None:
    own = signer.transfer("bank-a", "bank-b", 1)
    for_b = signer.transfer("bank-b", "bank-a", 1)

    sifted = check_permission(signer.state, candidates(own, for_b), "bank-a")

    assert kept_ids(sifted) == [own.id]
    error_class, field, detail = refusal(sifted)
    assert (error_class, field) == (NotPermittedError, "signer")
    assert "'bank-a'" in detail and "bank-b" in detail


def test_permission_the_central_bank_may_present_a_banks_redemption_but_not_its_payment(
    signer: Signer,
) -> None:
    redemption = signer.redeem("bank-a", 5)
    payment = signer.transfer("bank-a", "bank-b", 5)

    sifted = check_permission(signer.state, candidates(redemption, payment), "central-bank")

    assert kept_ids(sifted) == [redemption.id]
    assert [r.transaction_id for r in sifted.refused] == [payment.id]


# --- business rules -----------------------------------------------------------------


def test_business_rules_refuse_with_the_rules_own_error_field_and_detail(
    signer: Signer,
) -> None:
    signer.commit(signer.issue("bank-a", 100), signer.suspend("bank-c"))
    pays = signer.transfer("bank-a", "bank-b", 40)
    to_suspended = signer.transfer("bank-a", "bank-c", 1)
    to_nobody = signer.transfer("bank-a", "bank-zz", 1)
    overdrawn = signer.redeem("bank-a", 1_000)
    governs = signer.suspend("bank-b", signer="bank-a")

    sifted = check_business_rules(
        signer.state, candidates(pays, to_suspended, to_nobody, overdrawn, governs)
    )

    assert kept_ids(sifted) == [pays.id]
    assert [(r.index, type(r.error), r.error.field) for r in sifted.refused] == [
        (1, SuspendedError, "transfer.payee"),
        (2, UnknownAccountError, "transfer.payee"),
        (3, InsufficientFundsError, "redeem.amount"),
        (4, NotPermittedError, "signer"),
    ]
    overdraft = sifted.refused[2].error.detail
    assert overdraft.startswith("expected at most the balance 60"), (
        "the redeem is checked after the payment before it in the batch: " + overdraft
    )


def test_business_rules_check_a_batch_larger_than_a_block_chunk_by_chunk() -> None:
    small = genesis_dict()
    small["parameters"]["max_block_transactions"] = 2
    signer = Signer(Genesis.from_dict(small))
    signer.commit(signer.issue("bank-a", 3))
    # Each chunk starts from the head state: three payments of 2 from a balance of 3 are
    # two chunks, [2, 2] and [2]; the second of the first chunk queues, which is not a refusal.
    payments = [signer.transfer("bank-a", "bank-b", 2) for _ in range(3)]
    to_nobody = signer.transfer("bank-a", "bank-zz", 1)

    sifted = check_business_rules(signer.state, candidates(*payments, to_nobody))

    assert kept_ids(sifted) == [p.id for p in payments]
    assert [(r.index, type(r.error)) for r in sifted.refused] == [(3, UnknownAccountError)]


# --- room in the mempool ------------------------------------------------------------


def test_the_mempool_takes_what_fits_and_refuses_the_rest_as_overloaded(signer: Signer) -> None:
    mempool = Mempool(capacity=2)
    first, second, third = (signer.transfer("bank-a", "bank-b", n) for n in (1, 2, 3))
    add_to_mempool(mempool, candidates(first), signer.state)

    sifted = add_to_mempool(mempool, candidates(first, second, third), signer.state)

    assert kept_ids(sifted) == [second.id]
    assert [(k.index, k.status) for k in sifted.known] == [(0, PENDING)]
    [refused] = sifted.refused
    assert (refused.index, type(refused.error)) == (2, OverloadedError)
    assert "capacity 2" in refused.error.detail


# --- the whole chain ----------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.admitted: list[list[Transaction]] = []
        self.submitted_here: list[bool] = []

    def __call__(self, transactions: list[Transaction], submitted_here: bool) -> None:
        self.admitted.append(transactions)
        self.submitted_here.append(submitted_here)


def admitter_at_genesis(
    signer: Signer, verifier: BatchVerifier, capacity: int = 100
) -> tuple[Admitter, Mempool, Recorder]:
    chain = Chain(MemoryStore(), State.genesis(signer.genesis), InlineCheck())
    mempool = Mempool(capacity)
    recorder = Recorder()
    return Admitter(chain, mempool, verifier, recorder), mempool, recorder


def test_a_banks_batch_gets_one_answer_per_item_in_order_from_whichever_stage_stopped_it(
    signer: Signer, verifier: BatchVerifier
) -> None:
    admitter, mempool, recorder = admitter_at_genesis(signer, verifier)
    garbage = tx_pb.SignedTransaction(body=b"\xff", signature=b"")
    pays = signer.transfer("bank-a", "bank-b", 1)
    forged = dataclasses.replace(signer.transfer("bank-a", "bank-b", 2), signature=bytes(64))
    for_b = signer.transfer("bank-b", "bank-a", 3)
    to_nobody = signer.transfer("bank-a", "bank-zz", 4)

    batch = [pays.to_proto(), garbage, forged.to_proto(), for_b.to_proto(), to_nobody.to_proto()]
    results = admitter.admit(batch, sender="bank-a", check_rules=True)

    assert [(r.status, r.error.reason) for r in results] == [
        (ACCEPTED, ""),
        (REFUSED, "malformed"),
        (REFUSED, "bad_signature"),
        (REFUSED, "not_permitted"),
        (REFUSED, "unknown_account"),
    ]
    assert results[4].error.field == "transfer.payee", "the rule's field reaches the sender"
    assert recorder.admitted == [[pays]]
    assert recorder.submitted_here == [True], "what a bank submitted here is shared from here"
    assert pays.id in mempool and len(mempool) == 1

    [again] = admitter.admit([pays.to_proto()], sender="bank-a", check_rules=True)
    assert (again.transaction_id, again.status) == (pays.id, PENDING)
    assert recorder.admitted == [[pays]], "a retry is not admitted twice"


def test_a_batch_shared_by_another_validator_skips_permission_and_business_rules(
    signer: Signer, verifier: BatchVerifier
) -> None:
    admitter, mempool, recorder = admitter_at_genesis(signer, verifier)
    # A payment to an unknown bank: the proposer's block will carry it as REJECTED.
    to_nobody = signer.transfer("bank-b", "bank-zz", 4)
    forged = dataclasses.replace(signer.transfer("bank-b", "bank-a", 2), signature=bytes(64))

    results = admitter.admit(
        [to_nobody.to_proto(), forged.to_proto()], sender=None, check_rules=False
    )

    assert [r.status for r in results] == [ACCEPTED, REFUSED]
    assert results[1].error.reason == "bad_signature", "signatures are checked for everyone"
    assert recorder.admitted == [[to_nobody]] and to_nobody.id in mempool


def test_a_full_mempool_refuses_with_resource_exhausted_and_admits_nothing(
    signer: Signer, verifier: BatchVerifier
) -> None:
    admitter, mempool, recorder = admitter_at_genesis(signer, verifier, capacity=1)
    first, second = (signer.transfer("bank-a", "bank-b", n) for n in (1, 2))

    results = admitter.admit(
        [first.to_proto(), second.to_proto()], sender="bank-a", check_rules=True
    )

    assert [r.status for r in results] == [ACCEPTED, REFUSED]
    assert results[1].error.reason == OverloadedError.code
    assert results[1].error.status_code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert recorder.admitted == [[first]] and second.id not in mempool


def test_a_shared_batch_nobody_waits_for_is_admitted_without_building_answers(
    signer: Signer, verifier: BatchVerifier
) -> None:
    admitter, mempool, recorder = admitter_at_genesis(signer, verifier)
    good = signer.transfer("bank-a", "bank-b", 1)
    forged = dataclasses.replace(signer.transfer("bank-a", "bank-b", 2), signature=bytes(64))

    results = admitter.admit(
        [good.to_proto(), forged.to_proto()], sender=None, check_rules=False, answer=False
    )

    assert results == []
    assert good.id in mempool and forged.id not in mempool
    assert recorder.admitted == [[good]]
    assert recorder.submitted_here == [False], "a peer's share is not passed on again"


def test_a_batch_finished_after_a_block_committed_is_judged_against_the_new_head(
    signer: Signer, verifier: BatchVerifier
) -> None:
    """The intake prepares the next batches while one is finished; a block that commits in
    between must not let a transaction it carried back into the mempool."""
    chain = Chain(MemoryStore(), State.genesis(signer.genesis), InlineCheck())
    mempool, recorder = Mempool(100), Recorder()
    admitter = Admitter(chain, mempool, verifier, recorder)
    carried, waiting = (signer.transfer("bank-a", "bank-b", n) for n in (1, 2))

    prepared = admitter.prepare(
        [carried.to_proto(), waiting.to_proto()], sender="bank-a", check_rules=True
    )
    block, _ = signer.propose([carried])  # another validator's block, with `carried`
    chain.commit(block)
    results = admitter.finish(prepared)

    assert [(r.transaction_id, r.status) for r in results] == [
        (carried.id, COMMITTED),
        (waiting.id, ACCEPTED),
    ]
    assert carried.id not in mempool and waiting.id in mempool
    assert recorder.admitted == [[waiting]]
