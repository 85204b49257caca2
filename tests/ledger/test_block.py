"""Blocks: built and decoded alike, tampering detected, seals counted once per validator."""

from __future__ import annotations

import pytest
from straits.ledger.v1 import block_pb2 as block_pb

from ledger import block, codec
from ledger.block import Block, Seal
from ledger.errors import DecodeError, InvalidBlockError, QuorumError
from ledger.quorum import quorum
from tests.vectors.regenerate import sample_block
from tests.vectors.samples import CHAIN_ID, ed25519_key, p256_key, simple_block, validator_key

VALIDATORS = {f"validator-{n}": validator_key(n).public_key for n in range(4)}


def _seal(block_: Block, n: int) -> Seal:
    return block.make_seal(CHAIN_ID, block_.hash, f"validator-{n}", validator_key(n))


def _unsealed() -> Block:
    return sample_block().with_seals([])


def test_a_block_survives_encode_and_decode_whole():
    sealed = sample_block()
    decoded = Block.decode(sealed.encode(), chain_id=CHAIN_ID)
    assert decoded.hash == sealed.hash
    assert decoded.header == sealed.header
    assert decoded.header_bytes == sealed.header_bytes
    assert [t.id for t in decoded.transactions] == [t.id for t in sealed.transactions]
    assert decoded.seals == sealed.seals
    assert decoded.height == 7 and decoded.chain_id == CHAIN_ID


def _from_values(decoded: Block) -> bytes:
    """What ``encode`` builds from a block's values, with nothing carried over."""
    return Block(decoded.header, decoded.header_bytes, decoded.hash, decoded.transactions,
                 decoded.seals).encode()


def test_a_decoded_block_encodes_as_one_built_from_its_values_without_unknown_fields():
    sealed = sample_block()
    assert len(sealed.transactions) >= 2 and sealed.seals
    decoded = Block.decode(sealed.encode(), chain_id=CHAIN_ID)
    assert decoded.encode() == _from_values(decoded) == sealed.encode()

    # A sender's extra fields, in the block, a transaction and a seal, are not passed on.
    unknown = b"\xf8\x07\x2a"  # field 127, varint 42: no field of these messages
    wire = _wire(sealed)
    wire.transactions[1].ParseFromString(wire.transactions[1].SerializeToString() + unknown)
    wire.seals[0].ParseFromString(wire.seals[0].SerializeToString() + unknown)
    padded = wire.SerializeToString() + unknown
    assert len(padded) == len(sealed.encode()) + 3 * len(unknown)
    decoded = Block.decode(padded, chain_id=CHAIN_ID)
    assert decoded.encode() == _from_values(decoded) == sealed.encode()


def test_the_block_hash_covers_every_header_field():
    changes = {
        "height": 8,
        "parent_hash": b"\x01" * 32,
        "timestamp_ms": 2,
        "proposer": "validator-1",
        "round": 1,
        "state_root": b"\x01" * 32,
        "transactions": list(sample_block().transactions[:1]),
    }
    hashes = {simple_block().hash}
    for name, value in changes.items():
        hashes.add(simple_block(**{name: value}).hash)
    assert len(hashes) == len(changes) + 1


def _wire(sealed: Block) -> block_pb.Block:
    return codec.decode(block_pb.Block, sealed.encode())


def test_a_tampered_header_yields_another_hash_so_the_seals_no_longer_count():
    wire = _wire(sample_block())
    header = codec.decode(block_pb.BlockHeader, wire.header)
    header.timestamp_ms += 1
    wire.header = codec.encode(header)
    tampered = Block.from_proto(wire, chain_id=CHAIN_ID)
    assert tampered.hash != sample_block().hash
    with pytest.raises(QuorumError) as error:
        block.verify_seals(tampered, VALIDATORS)
    assert (error.value.valid, error.value.needed) == (0, 3)


def test_a_header_whose_transactions_root_does_not_match_is_refused():
    wire = _wire(sample_block())
    header = codec.decode(block_pb.BlockHeader, wire.header)
    header.transactions_root = bytes(32)
    wire.header = codec.encode(header)
    with pytest.raises(InvalidBlockError) as error:
        Block.from_proto(wire, chain_id=CHAIN_ID)
    assert error.value.field == "header.transactions_root"


@pytest.mark.parametrize("change", ["drop", "swap", "add"])
def test_transactions_changed_under_a_header_are_refused(change):
    wire = _wire(sample_block())
    txs = list(wire.transactions)
    if change == "drop":
        txs.pop()
    elif change == "swap":
        txs[0], txs[1] = txs[1], txs[0]
    else:
        other = sample_block().transactions[0]
        extra = block_pb.Block().transactions.add()
        extra.CopyFrom(other.to_proto())
        extra.body = extra.body + b"\x18\x63"  # a trailing nonce: a different transaction
        txs.append(extra)
    del wire.transactions[:]
    wire.transactions.extend(txs)
    with pytest.raises(InvalidBlockError) as error:
        Block.from_proto(wire, chain_id=CHAIN_ID)
    assert error.value.field == "header.transactions_root"


def test_a_block_carrying_the_same_transaction_twice_is_refused():
    first = sample_block().transactions[0]
    doubled = simple_block(transactions=[first, first])
    with pytest.raises(InvalidBlockError, match="distinct transactions") as error:
        Block.decode(doubled.encode(), chain_id=CHAIN_ID)
    assert error.value.field == "transactions"


def test_a_block_of_another_chain_is_refused_by_name():
    with pytest.raises(InvalidBlockError) as error:
        Block.decode(sample_block().encode(), chain_id="another-chain")
    assert error.value.field == "header.chain_id"


def test_a_block_with_more_seals_than_allowed_is_refused():
    sealed = sample_block()
    flood = sealed.with_seals([sealed.seals[0]] * (block.MAX_SEALS + 1))
    with pytest.raises(InvalidBlockError) as error:
        Block.decode(flood.encode(), chain_id=CHAIN_ID)
    assert error.value.field == "seals"


@pytest.mark.parametrize("garbage", [b"\xff\xff", b"\x0a\x40short", b"\x12\x03\xff\xff\xff"])
def test_garbage_block_bytes_are_a_decode_error(garbage):
    with pytest.raises(DecodeError):
        Block.decode(garbage, chain_id=CHAIN_ID)


def test_three_seals_of_four_validators_make_a_block_final():
    unsealed = _unsealed()
    block.verify_seals(unsealed.with_seals([_seal(unsealed, n) for n in (0, 2, 3)]), VALIDATORS)


def _two_valid_plus(extra: Seal) -> Block:
    unsealed = _unsealed()
    return unsealed.with_seals([_seal(unsealed, 0), _seal(unsealed, 1), extra])


def _another_blocks_seal() -> Seal:
    other = simple_block(height=8)
    return _seal(other, 2)


def _other_chains_seal() -> Seal:
    unsealed = _unsealed()
    return block.make_seal("another-chain", unsealed.hash, "validator-2", validator_key(2))


NOT_COUNTED = {
    "a duplicate of a counted seal": lambda: _seal(_unsealed(), 1),
    "a seal from a non-validator": lambda: block.make_seal(
        CHAIN_ID, _unsealed().hash, "outsider", ed25519_key(99)
    ),
    "a seal with a bad signature": lambda: Seal("validator-2", bytes(64)),
    "a seal signed with another validator's key": lambda: block.make_seal(
        CHAIN_ID, _unsealed().hash, "validator-2", validator_key(3)
    ),
    "a seal signed by a P-256 key in an Ed25519 validator's name": lambda: block.make_seal(
        CHAIN_ID, _unsealed().hash, "validator-2", p256_key(1)
    ),
    "a seal for another block": _another_blocks_seal,
    "a seal for the same hash on another chain": _other_chains_seal,
    "a truncated seal": lambda: Seal("validator-2", _seal(_unsealed(), 2).signature[:-1]),
}


@pytest.mark.parametrize("case", sorted(NOT_COUNTED))
def test_seals_that_do_not_count_leave_the_block_short_of_quorum(case):
    with pytest.raises(QuorumError) as error:
        block.verify_seals(_two_valid_plus(NOT_COUNTED[case]()), VALIDATORS)
    assert (error.value.valid, error.value.needed) == (2, 3), case
    assert "2 valid commit seals, 3 needed" in str(error.value)


def test_uncounted_seals_do_no_harm_beside_a_quorum():
    unsealed = _unsealed()
    valid = [_seal(unsealed, n) for n in range(3)]
    noise = [Seal("validator-3", bytes(64)), valid[0], Seal("outsider", bytes(64))]
    block.verify_seals(unsealed.with_seals(noise + valid), VALIDATORS)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 10])
def test_the_quorum_needed_follows_the_size_of_the_validator_set(size):
    validators = {f"validator-{n}": validator_key(n).public_key for n in range(size)}
    unsealed = _unsealed()
    needed = quorum(size)
    short = unsealed.with_seals([_seal(unsealed, n) for n in range(needed - 1)])
    with pytest.raises(QuorumError) as error:
        block.verify_seals(short, validators)
    assert (error.value.valid, error.value.needed) == (needed - 1, needed)
    block.verify_seals(unsealed.with_seals([_seal(unsealed, n) for n in range(needed)]), validators)


def test_an_empty_validator_set_never_makes_a_block_final():
    with pytest.raises(QuorumError, match="empty validator set"):
        block.verify_seals(_unsealed(), {})
