"""Transactions: structure checks name the bad field; bytes are kept as signed; ids ignore
signatures but not chains."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from straits.ledger.v1 import transaction_pb2 as tx_pb

from ledger import codec, transaction
from ledger.errors import DecodeError, MalformedTransactionError
from ledger.transaction import INT64_MAX, Transaction
from tests.vectors.samples import (
    ALPHA_BANK,
    CHAIN_ID,
    p256_key,
    participant_key,
    sample_bodies,
    transfer_body,
)

Mutation = Callable[[tx_pb.TransactionBody], None]


def _set(path: str, value: object) -> Mutation:
    def mutate(body: tx_pb.TransactionBody) -> None:
        *parents, name = path.split(".")
        target = body
        for parent in parents:
            target = getattr(target, parent)
        setattr(target, name, value)

    return mutate


def _clear_key(kind: str) -> Mutation:
    def mutate(body: tx_pb.TransactionBody) -> None:
        holder = body.admit_bank if kind == "admit_bank" else body.change_validators.validators[1]
        holder.ClearField("key")

    return mutate


def _bad_key(body: tx_pb.TransactionBody) -> None:
    body.admit_bank.key.data = b"\x04" + bytes(64)


def _repeat_validator(body: tx_pb.TransactionBody) -> None:
    body.change_validators.validators[2].id = body.change_validators.validators[0].id


def _no_validators(body: tx_pb.TransactionBody) -> None:
    del body.change_validators.validators[:]


def _no_kind(body: tx_pb.TransactionBody) -> None:
    body.ClearField("transfer")


BAD_FIELDS = [
    ("transfer", _set("signer", ""), "signer"),
    ("transfer", _set("signer", "x" * 65), "signer"),
    ("transfer", _set("signer", "alpha\nbank"), "signer"),
    ("transfer", _set("valid_until_height", 0), "valid_until_height"),
    ("transfer", _no_kind, "kind"),
    ("transfer", _set("transfer.payee", ""), "transfer.payee"),
    ("transfer", _set("transfer.amount", 0), "transfer.amount"),
    ("transfer", _set("transfer.amount", -1), "transfer.amount"),
    ("transfer", _set("transfer.amount", -(2**63)), "transfer.amount"),
    ("transfer", _set("transfer.priority", tx_pb.PRIORITY_UNSPECIFIED), "transfer.priority"),
    ("transfer", _set("transfer.priority", 99), "transfer.priority"),
    ("transfer", _set("transfer.reference", "r" * 257), "transfer.reference"),
    ("issue", _set("issue.bank", ""), "issue.bank"),
    ("issue", _set("issue.amount", 0), "issue.amount"),
    ("issue", _set("issue.collateral_ref", "c" * 257), "issue.collateral_ref"),
    ("redeem", _set("redeem.amount", -5), "redeem.amount"),
    ("redeem", _set("redeem.collateral_ref", "c" * 257), "redeem.collateral_ref"),
    ("cancel", _set("cancel.transfer_id", bytes(31)), "cancel.transfer_id"),
    ("hold", _set("hold.transfer_id", b""), "hold.transfer_id"),
    ("release", _set("release.transfer_id", bytes(33)), "release.transfer_id"),
    ("reprioritise", _set("reprioritise.transfer_id", b"x"), "reprioritise.transfer_id"),
    ("reprioritise", _set("reprioritise.priority", 0), "reprioritise.priority"),
    ("admit_bank", _set("admit_bank.bank", ""), "admit_bank.bank"),
    ("admit_bank", _set("admit_bank.name", "n" * 257), "admit_bank.name"),
    ("admit_bank", _clear_key("admit_bank"), "admit_bank.key"),
    ("admit_bank", _bad_key, "admit_bank.key"),
    ("admit_bank", _set("admit_bank.key.type", tx_pb.KEY_TYPE_UNSPECIFIED), "admit_bank.key"),
    ("suspend_bank", _set("suspend_bank.bank", ""), "suspend_bank.bank"),
    ("unsuspend_bank", _set("unsuspend_bank.bank", "b" * 65), "unsuspend_bank.bank"),
    ("change_validators", _no_validators, "change_validators.validators"),
    ("change_validators", _repeat_validator, "change_validators.validators[2].id"),
    ("change_validators", _clear_key("change_validators"), "change_validators.validators[1].key"),
    (
        "change_validators",
        _set("change_validators.effective_height", 0),
        "change_validators.effective_height",
    ),
]


@pytest.mark.parametrize(("kind", "mutate", "field"), BAD_FIELDS)
def test_every_malformed_field_is_refused_by_name_when_signing_and_when_decoding(
    kind, mutate, field
):
    body = sample_bodies()[kind]
    mutate(body)
    with pytest.raises(MalformedTransactionError) as signing:
        transaction.sign(CHAIN_ID, participant_key(ALPHA_BANK), body)
    assert signing.value.field == field, str(signing.value)

    wire = tx_pb.SignedTransaction(body=codec.encode(body), signature=bytes(64))
    with pytest.raises(MalformedTransactionError) as decoding:
        Transaction.decode(CHAIN_ID, wire.SerializeToString())
    assert decoding.value.field == field, str(decoding.value)
    assert "expected" in decoding.value.detail


@pytest.mark.parametrize("kind", sorted(sample_bodies()))
def test_every_well_formed_kind_signs_and_decodes_to_the_same_transaction(kind):
    signer = sample_bodies()[kind].signer
    tx = transaction.sign(CHAIN_ID, participant_key(signer), sample_bodies()[kind])
    decoded = Transaction.decode(CHAIN_ID, tx.encode())
    assert (decoded.id, decoded.body, decoded.signature) == (tx.id, tx.body, tx.signature)
    assert kind.startswith(decoded.kind)
    assert participant_key(signer).public_key.verify(decoded.signature, decoded.signed)


def test_the_largest_int64_amount_is_well_formed():
    transaction.sign(CHAIN_ID, participant_key(ALPHA_BANK), transfer_body(amount=INT64_MAX))


def _signed_transfer() -> Transaction:
    return transaction.sign(CHAIN_ID, participant_key(ALPHA_BANK), transfer_body())


def test_every_truncation_of_a_signed_transaction_is_refused_or_loses_its_signature():
    tx = _signed_transfer()
    encoded = tx.encode()
    body_field_end = len(encoded) - len(tx.signature) - 2  # tag and length of the signature
    for cut in range(len(encoded)):
        if cut == body_field_end:
            # A whole body with the signature cut off: decodes, but signs nothing.
            stripped = Transaction.decode(CHAIN_ID, encoded[:cut])
            assert stripped.signature == b""
            assert not participant_key(ALPHA_BANK).public_key.verify(b"", stripped.signed)
            continue
        with pytest.raises((DecodeError, MalformedTransactionError)):
            Transaction.decode(CHAIN_ID, encoded[:cut])


def test_every_truncation_of_the_signed_body_is_refused():
    tx = _signed_transfer()
    for cut in range(len(tx.body_bytes)):
        wire = tx_pb.SignedTransaction(body=tx.body_bytes[:cut], signature=tx.signature)
        with pytest.raises((DecodeError, MalformedTransactionError)):
            Transaction.from_proto(CHAIN_ID, wire)


@pytest.mark.parametrize(
    "garbage",
    [b"\xff\xff\xff\xff", b"\x0a\x10short", b"\x0a\x02\xff\xff", b"\x0b", bytes(range(256))],
)
def test_garbage_bytes_are_a_decode_error(garbage):
    with pytest.raises(DecodeError, match="expected a serialised"):
        Transaction.decode(CHAIN_ID, garbage)


def test_a_name_that_is_not_utf8_is_a_decode_error():
    body = codec.encode(transfer_body()).replace(ALPHA_BANK.encode(), b"alpha\xffbank")
    wire = tx_pb.SignedTransaction(body=body, signature=bytes(64))
    with pytest.raises(DecodeError):
        Transaction.decode(CHAIN_ID, wire.SerializeToString())


@settings(max_examples=300)
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_either_decode_or_raise_a_precise_error(data):
    with contextlib.suppress(DecodeError, MalformedTransactionError):
        Transaction.decode(CHAIN_ID, data)


def test_the_id_does_not_depend_on_the_signature():
    key = p256_key(1)  # P-256 signatures are randomised: two signatures, one body
    first = transaction.sign(CHAIN_ID, key, transfer_body())
    second = transaction.sign(CHAIN_ID, key, transfer_body())
    assert first.signature != second.signature
    assert first.id == second.id
    resigned = tx_pb.SignedTransaction(body=first.body_bytes, signature=b"anything")
    assert Transaction.decode(CHAIN_ID, resigned.SerializeToString()).id == first.id


def test_another_chain_gives_another_id_and_the_signature_no_longer_holds():
    tx = _signed_transfer()
    elsewhere = Transaction.decode("another-chain", tx.encode())
    assert elsewhere.id != tx.id
    assert not participant_key(ALPHA_BANK).public_key.verify(elsewhere.signature, elsewhere.signed)


def test_the_bytes_that_came_are_the_bytes_checked_never_a_reserialisation():
    # Same fields in a non-canonical order: a different byte string, so a different id
    # and a signature that must cover exactly these bytes.
    canonical = codec.encode(transfer_body())
    reordered = b"".join(
        tx_pb.TransactionBody(**{name: getattr(transfer_body(), name)}).SerializeToString()
        for name in ("transfer", "nonce", "valid_until_height", "signer")
    )
    assert reordered != canonical
    signature = participant_key(ALPHA_BANK).sign(codec.signing_bytes(CHAIN_ID, codec.TX, reordered))
    wire = tx_pb.SignedTransaction(body=reordered, signature=signature)
    tx = Transaction.decode(CHAIN_ID, wire.SerializeToString())
    assert tx.body == transfer_body()
    assert tx.body_bytes == reordered
    assert (
        tx.id
        == codec.transaction_id(CHAIN_ID, reordered)
        != codec.transaction_id(CHAIN_ID, canonical)
    )
    assert participant_key(ALPHA_BANK).public_key.verify(tx.signature, tx.signed)


def test_changing_the_callers_body_after_signing_cannot_change_the_transaction():
    body = transfer_body(amount=100)
    tx = transaction.sign(CHAIN_ID, participant_key(ALPHA_BANK), body)
    body.transfer.amount = 1_000_000
    assert tx.body.transfer.amount == 100
    assert codec.decode(tx_pb.TransactionBody, tx.body_bytes) == tx.body
