"""The deliberately bad payments are bad in exactly the way they claim, and the seeded
mix of payers and payees is the same every time for the same seed."""

from __future__ import annotations

import pytest
from straits.ledger.v1 import transaction_pb2 as tx_pb

from clients.load import faults
from clients.load.workload import Order, Workload
from ledger import codec
from ledger.errors import MalformedTransactionError
from ledger.keys import PrivateKey
from ledger.transaction import Transaction

CHAIN = "straits-test"
BANKS = ("bank-a", "bank-b", "bank-c")
KEY = PrivateKey.from_seed(b"\x07" * 32)


def signed_ok(signed: tx_pb.SignedTransaction) -> bool:
    return KEY.public_key.verify(signed.signature,
                                 codec.signing_bytes(CHAIN, codec.TX, signed.body))


def order(fault: str = "", index: int = 5) -> Order:
    return Order(index=index, payer="bank-a", payee="bank-b", amount=42, fault=fault)


def test_a_good_order_is_a_transfer_signed_by_its_payer() -> None:
    tx_id, signed = faults.sign_body(CHAIN, KEY, faults.transfer_body(order(), 100, nonce=3))
    tx = Transaction.from_proto(CHAIN, signed)
    assert signed_ok(signed) and tx.id == tx_id
    assert (tx.signer, tx.body.transfer.payee, tx.body.transfer.amount) == ("bank-a", "bank-b", 42)


def test_a_bad_signature_covers_a_valid_body_with_one_bit_flipped() -> None:
    tx_id, signed = faults.bad_transaction(CHAIN, KEY, order("bad_signature"), 100, 4, None)
    assert Transaction.from_proto(CHAIN, signed).id == tx_id, "the body itself is well formed"
    assert not signed_ok(signed)


def test_a_resent_transaction_is_the_earlier_one_byte_for_byte() -> None:
    _, earlier = faults.sign_body(CHAIN, KEY, faults.transfer_body(order(index=1), 100, 9))
    tx_id, again = faults.bad_transaction(CHAIN, KEY, order("resent"), 100, 10, earlier)
    assert again.SerializeToString() == earlier.SerializeToString()
    assert tx_id == codec.transaction_id(CHAIN, earlier.body)


def test_a_resend_with_nothing_earlier_to_resend_is_still_bad() -> None:
    _, signed = faults.bad_transaction(CHAIN, KEY, order("resent"), 100, 10, None)
    assert not signed_ok(signed)


def test_a_zero_amount_is_signed_properly_but_malformed() -> None:
    _, signed = faults.bad_transaction(CHAIN, KEY, order("zero_amount"), 100, 11, None)
    assert signed_ok(signed)
    with pytest.raises(MalformedTransactionError):
        Transaction.from_proto(CHAIN, signed)


def test_an_unknown_payee_is_signed_properly_to_no_participant() -> None:
    _, signed = faults.bad_transaction(CHAIN, KEY, order("unknown_payee"), 100, 12, None)
    assert signed_ok(signed)
    assert Transaction.from_proto(CHAIN, signed).body.transfer.payee == faults.UNKNOWN_PAYEE


def test_a_duplicate_request_reuses_an_earlier_request_id_with_other_content() -> None:
    earlier = faults.instruction(order(index=1), "load-run-1")
    dup = faults.bad_instruction(order("duplicate_request"), "load-run-5", earlier)
    assert dup.request_id == earlier.request_id and dup.amount != earlier.amount
    first = faults.bad_instruction(order("duplicate_request"), "load-run-5", None)
    assert first.payee == faults.UNKNOWN_PAYEE, "with nothing to repeat it must still be bad"
    assert faults.bad_instruction(order("zero_amount"), "load-run-6", earlier).amount == 0


def test_the_same_seed_gives_the_same_orders_and_every_batch_has_one_payer() -> None:
    def run(seed: int) -> list[Order]:
        workload = Workload(BANKS, seed=seed, bad_share=0.2, faults=faults.VALIDATOR_FAULTS)
        return [o for _ in range(200) for o in workload.batch(5)]

    first = run(7)
    assert first == run(7) and first != run(8)
    for start in range(0, len(first), 5):
        assert len({o.payer for o in first[start:start + 5]}) == 1
    assert all(o.payer != o.payee for o in first)
    assert {o.payer for o in first} == set(BANKS), "the mix should reach every bank"
    bad = [o for o in first if o.fault]
    assert 0.15 < len(bad) / len(first) < 0.25, f"{len(bad)} bad of {len(first)}"
    assert {o.fault for o in bad} == set(faults.VALIDATOR_FAULTS)
