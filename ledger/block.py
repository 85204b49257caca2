"""Blocks as values: header, hash, transactions, commit seals.

A ``Block`` keeps the header bytes exactly as hashed, so the hash and every seal
check work on the bytes that came, never on a re-serialisation. Seals are
checked by ``verify_seals`` against the validator set of the block's height;
the quorum size is named in ``ledger.quorum``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from straits.ledger.v1 import block_pb2 as block_pb

from ledger import codec
from ledger.errors import InvalidBlockError, QuorumError, expected
from ledger.keys import PrivateKey, PublicKey
from ledger.quorum import quorum
from ledger.transaction import Transaction

MAX_SEALS = 1024

# Finds an already decoded transaction by its body bytes and signature: a validator's
# mempool, so a proposal's transactions admitted before are not decoded again. It must
# return only a decode of exactly those bytes (same body bytes, same signature), which
# is the same value ``Transaction.from_proto`` would build.
KnownTransactions = Callable[[bytes, bytes], Transaction | None]


@dataclass(frozen=True, slots=True)
class Seal:
    validator: str
    signature: bytes


@dataclass(frozen=True)
class Block:
    header: block_pb.BlockHeader
    header_bytes: bytes
    hash: bytes
    transactions: tuple[Transaction, ...]
    seals: tuple[Seal, ...] = field(default=())

    @property
    def height(self) -> int:
        return self.header.height

    @property
    def chain_id(self) -> str:
        return self.header.chain_id

    def with_seals(self, seals: Sequence[Seal]) -> Block:
        return Block(self.header, self.header_bytes, self.hash, self.transactions, tuple(seals))

    def to_proto(self) -> block_pb.Block:
        """A fresh message (the caller may change it), parsed from the one encoding."""
        return block_pb.Block.FromString(self.encode())

    def encode(self) -> bytes:
        """The block's bytes, built once: a validator sends the same block to every peer,
        records it with its last signature and streams it to every follower."""
        return self._encoded

    @cached_property
    def _encoded(self) -> bytes:
        return block_pb.Block(
            header=self.header_bytes,
            transactions=[t.to_proto() for t in self.transactions],
            seals=[
                block_pb.CommitSeal(validator=s.validator, signature=s.signature)
                for s in self.seals
            ],
        ).SerializeToString()

    @classmethod
    def from_proto(
        cls, message: block_pb.Block, *, chain_id: str, known: KnownTransactions | None = None
    ) -> Block:
        header = codec.decode(block_pb.BlockHeader, message.header)
        if header.chain_id != chain_id:
            raise InvalidBlockError(
                expected(f"chain id {chain_id!r}", header.chain_id), field="header.chain_id"
            )
        if len(message.seals) > MAX_SEALS:
            raise InvalidBlockError(
                expected(f"at most {MAX_SEALS} seals", len(message.seals)), field="seals"
            )
        if known is None:
            transactions = tuple(Transaction.from_proto(chain_id, t) for t in message.transactions)
        else:
            transactions = tuple(
                known(t.body, t.signature) or Transaction.from_proto(chain_id, t)
                for t in message.transactions
            )
        ids = [t.id for t in transactions]
        if len(set(ids)) != len(ids):
            # The second copy could only ever be a replay, which makes a block invalid.
            raise InvalidBlockError(
                expected("distinct transactions", f"{len(ids) - len(set(ids))} repeated"),
                field="transactions",
            )
        if header.transactions_root != codec.merkle_root(ids):
            raise InvalidBlockError(
                "transactions_root does not match the transactions carried",
                field="header.transactions_root",
            )
        block = cls(
            header=header,
            header_bytes=message.header,
            hash=codec.block_hash(chain_id, message.header),
            transactions=transactions,
            seals=tuple(Seal(s.validator, s.signature) for s in message.seals),
        )
        # The same bytes ``_encoded`` would build from the values, at C speed from the
        # message, less any fields this version does not know (not passed on): a validator
        # records a proposal it prepared with its signature and may send it on, and
        # building it again a transaction at a time cost 0.7 µs a transaction.
        canonical = block_pb.Block()
        canonical.CopyFrom(message)
        canonical.DiscardUnknownFields()
        block.__dict__["_encoded"] = canonical.SerializeToString()
        return block

    @classmethod
    def decode(
        cls, data: bytes, *, chain_id: str, known: KnownTransactions | None = None
    ) -> Block:
        return cls.from_proto(codec.decode(block_pb.Block, data), chain_id=chain_id, known=known)


def build(
    *,
    chain_id: str,
    height: int,
    parent_hash: bytes,
    timestamp_ms: int,
    proposer: str,
    round: int,
    transactions: Sequence[Transaction],
    state_root: bytes,
    receipts_root: bytes,
) -> Block:
    header = block_pb.BlockHeader(
        chain_id=chain_id,
        height=height,
        parent_hash=parent_hash,
        timestamp_ms=timestamp_ms,
        proposer=proposer,
        round=round,
        transactions_root=codec.merkle_root([t.id for t in transactions]),
        state_root=state_root,
        receipts_root=receipts_root,
    )
    header_bytes = codec.encode(header)
    return Block(
        header, header_bytes, codec.block_hash(chain_id, header_bytes), tuple(transactions)
    )


def seal_bytes(chain_id: str, block_hash: bytes) -> bytes:
    return codec.signing_bytes(chain_id, codec.COMMIT_SEAL, block_hash)


def make_seal(chain_id: str, block_hash: bytes, validator: str, key: PrivateKey) -> Seal:
    return Seal(validator, key.sign(seal_bytes(chain_id, block_hash)))


def verify_seals(block: Block, validators: Mapping[str, PublicKey]) -> None:
    """Raise ``QuorumError`` unless the block carries a quorum of valid seals.

    Seals from non-validators, duplicates and bad signatures are not counted; they
    are not an error by themselves (a proposer may attach more than a quorum).
    """
    if not validators:
        # quorum(0) is 0: without this, no seals at all would make a block final.
        raise QuorumError(valid=0, needed=1, detail=f"block {block.height}: empty validator set")
    needed = quorum(len(validators))
    message = seal_bytes(block.chain_id, block.hash)
    valid: set[str] = set()
    for seal in block.seals:
        key = validators.get(seal.validator)
        if key is None or seal.validator in valid:
            continue
        if key.verify(seal.signature, message):
            valid.add(seal.validator)
    if len(valid) < needed:
        raise QuorumError(valid=len(valid), needed=needed, detail=f"block {block.height}")
