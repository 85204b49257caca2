"""Canonical bytes: the signing layout, its unambiguity, ids, hashes and Merkle roots."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from straits.ledger.v1 import transaction_pb2 as tx_pb

from ledger import codec
from ledger.errors import DecodeError

texts = st.text(max_size=20)
payloads = st.binary(max_size=40)


def _parse_signing_bytes(data: bytes) -> tuple[str, str, bytes]:
    """Read the layout back by hand, as an independent implementation would."""
    assert data[:8] == b"STRAITS1", f"magic missing: {data[:8]!r}"
    (chain_len,) = struct.unpack(">H", data[8:10])
    chain = data[10 : 10 + chain_len].decode()
    at = 10 + chain_len
    (type_len,) = struct.unpack(">H", data[at : at + 2])
    kind = data[at + 2 : at + 2 + type_len].decode()
    return chain, kind, data[at + 2 + type_len :]


def test_signing_bytes_are_magic_then_length_prefixed_chain_and_type_then_payload():
    data = codec.signing_bytes("straits-sg", codec.TX, b"\x01\x02")
    assert (
        data
        == b"STRAITS1" + b"\x00\x0a" + b"straits-sg" + b"\x00\x0b" + b"transaction" + b"\x01\x02"
    )


@settings(max_examples=200)
@given(chain=texts, kind=texts, payload=payloads)
def test_signing_bytes_read_back_to_exactly_what_went_in(chain, kind, payload):
    assert _parse_signing_bytes(codec.signing_bytes(chain, kind, payload)) == (chain, kind, payload)


@settings(max_examples=300)
@given(a=st.tuples(texts, texts, payloads), b=st.tuples(texts, texts, payloads))
def test_no_two_different_chain_type_payload_triples_share_signing_bytes(a, b):
    if a != b:
        assert codec.signing_bytes(*a) != codec.signing_bytes(*b)


def test_moving_a_boundary_between_chain_type_and_payload_changes_the_bytes():
    variants = [
        ("ab", "c", b"d"),
        ("a", "bc", b"d"),
        ("a", "b", b"cd"),
        ("abc", "", b"d"),
    ]
    assert len({codec.signing_bytes(*v) for v in variants}) == len(variants)


def test_a_signature_for_one_message_type_cannot_be_replayed_as_another():
    payload = bytes(32)
    assert codec.signing_bytes("c", codec.HEADER, payload) != codec.signing_bytes(
        "c", codec.COMMIT_SEAL, payload
    )


def test_transaction_id_and_block_hash_are_sha256_of_their_signing_bytes():
    body = b"some body"
    assert (
        codec.transaction_id("c", body)
        == hashlib.sha256(codec.signing_bytes("c", codec.TX, body)).digest()
    )
    assert (
        codec.block_hash("c", body)
        == hashlib.sha256(codec.signing_bytes("c", codec.HEADER, body)).digest()
    )
    assert codec.transaction_id("c", body) != codec.block_hash("c", body)
    assert codec.transaction_id("c", body) != codec.transaction_id("d", body)


leaf_lists = st.lists(st.binary(max_size=8), max_size=9)


@settings(max_examples=300)
@given(a=leaf_lists, b=leaf_lists)
def test_different_leaf_lists_never_share_a_merkle_root(a, b):
    if a != b:
        assert codec.merkle_root(a) != codec.merkle_root(b)


@pytest.mark.parametrize("count", [1, 2, 3, 5, 7, 8, 9])
def test_repeating_the_last_leaf_changes_the_root_at_any_count(count):
    leaves = [bytes([i]) for i in range(count)]
    assert codec.merkle_root(leaves) != codec.merkle_root([*leaves, leaves[-1]])


def test_leaf_order_matters():
    assert codec.merkle_root([b"a", b"b"]) != codec.merkle_root([b"b", b"a"])


def test_an_inner_node_cannot_pass_for_a_leaf():
    # Without domain separation, the one-leaf list [H(a)|H(b)] would share the root of [a, b].
    leaf_hash = [hashlib.sha256(x).digest() for x in (b"a", b"b")]
    assert codec.merkle_root([leaf_hash[0] + leaf_hash[1]]) != codec.merkle_root([b"a", b"b"])
    assert codec.merkle_root([b"a", b"b"]) != hashlib.sha256(leaf_hash[0] + leaf_hash[1]).digest()


@pytest.mark.parametrize("count", [0, 1, 2, 3, 5, 100])
def test_every_root_is_a_32_byte_hash_and_the_empty_list_has_its_own(count):
    root = codec.merkle_root([bytes([i % 256]) for i in range(count)])
    assert len(root) == codec.HASH_SIZE
    assert (root == codec.EMPTY_ROOT) == (count == 0)


def test_an_odd_node_is_carried_up_not_duplicated():
    a, b, c = (hashlib.sha256(b"\x00" + x).digest() for x in (b"a", b"b", b"c"))
    ab = hashlib.sha256(b"\x01" + a + b).digest()
    assert codec.merkle_root([b"a", b"b", b"c"]) == hashlib.sha256(b"\x01" + ab + c).digest()


def test_undecodable_bytes_raise_a_decode_error_naming_the_message():
    with pytest.raises(DecodeError, match="TransactionBody"):
        codec.decode(tx_pb.TransactionBody, b"\xff\xff\xff")
    with pytest.raises(DecodeError, match="the header"):
        codec.decode(tx_pb.TransactionBody, b"\x0a\x05ab", what="the header")


def test_encoding_is_deterministic_and_decodes_back():
    body = tx_pb.TransactionBody(signer="alpha-bank", valid_until_height=9, nonce=3)
    encoded = codec.encode(body)
    assert encoded == codec.encode(
        tx_pb.TransactionBody(nonce=3, valid_until_height=9, signer="alpha-bank")
    )
    assert codec.decode(tx_pb.TransactionBody, encoded) == body
