"""The only place a validator key signs consensus payloads, guarded against double signing.

The signer refuses to sign at a (height, round, step) at or below the last one it
signed, unless the payload is byte-identical (a repeat, not a second opinion).
Its ``LastSigned`` record also holds the block this validator prepared with the
PREPARE certificate: QBFT stays safe only if a validator that prepared a block
reports it in every later ROUND-CHANGE of that height, crash or no crash. The
runtime persists the record before any message signed under it leaves.

A validator that has lost its record (a wiped or rebuilt store) cannot know what it
signed before; ``abstain_through`` is a height at or below which the signer signs
nothing at all, set by the runtime to just past the network's head as peers report it.
"""

from __future__ import annotations

from dataclasses import dataclass

from straits.consensus.v1 import consensus_pb2 as pb

from ledger import codec
from ledger.block import Block, seal_bytes
from ledger.consensus.messages import Signed, Step, sign
from ledger.errors import DoubleSignError, InvalidBlockError, InvalidMessageError
from ledger.keys import PrivateKey


@dataclass(frozen=True)
class Prepared:
    """A block with a quorum of PREPAREs for it in ``round``: the PREPARE certificate."""

    round: int
    block: Block
    prepares: tuple[Signed, ...]


@dataclass(frozen=True)
class LastSigned:
    signed: Signed
    prepared: Prepared | None = None

    @property
    def position(self) -> tuple[int, int, int]:
        return (self.signed.height, self.signed.round, self.signed.step.value)

    def encode(self) -> bytes:
        message = pb.LastSigned(
            height=self.signed.height,
            round=self.signed.round,
            step=self.signed.step.value,
            signed=self.signed.to_proto(),
        )
        if self.prepared is not None:
            message.prepared = True
            message.prepared_round = self.prepared.round
            message.prepared_block.ParseFromString(self.prepared.block.encode())
            message.prepares.extend(s.to_proto() for s in self.prepared.prepares)
        return codec.encode(message)

    @classmethod
    def decode(cls, data: bytes, *, chain_id: str) -> LastSigned:
        message = codec.decode(pb.LastSigned, data)
        try:
            signed = Signed.from_proto(message.signed)
            prepared = None
            if message.prepared:
                prepared = Prepared(
                    round=message.prepared_round,
                    block=Block.from_proto(message.prepared_block, chain_id=chain_id),
                    prepares=tuple(Signed.from_proto(s) for s in message.prepares),
                )
        except (InvalidMessageError, InvalidBlockError) as exc:
            raise InvalidMessageError(
                f"stored last-signed record is corrupt: {exc}", reason="corrupt_record"
            ) from exc
        return cls(signed, prepared)


class Signer:
    def __init__(
        self,
        chain_id: str,
        identity: str,
        key: PrivateKey,
        last: LastSigned | None,
        abstain_through: int = 0,
    ) -> None:
        self.chain_id = chain_id
        self.identity = identity
        self._key = key
        self.last = last
        self.abstain_through = abstain_through

    def seal(self, block_hash: bytes) -> bytes:
        """The commit seal over ``block_hash`` that a COMMIT carries."""
        return self._key.sign(seal_bytes(self.chain_id, block_hash))

    def may_sign(self, height: int, round: int, step: Step) -> bool:
        if height <= self.abstain_through:
            return False
        return self.last is None or (height, round, step.value) > self.last.position

    def sign(self, payload: pb.Payload, prepared: Prepared | None) -> Signed:
        """Sign and move the record on; raise ``DoubleSignError`` at a spent position."""
        position = (payload.height, payload.round, payload.step)
        if payload.height <= self.abstain_through:
            raise DoubleSignError(
                f"signing nothing through height {self.abstain_through} (no last-signed record);"
                f" refused {Step(payload.step).name} at height {payload.height}"
            )
        if self.last is not None and position <= self.last.position:
            if (
                position == self.last.position
                and codec.encode(payload) == self.last.signed.payload_bytes
            ):
                return self.last.signed
            raise DoubleSignError(
                f"already signed {self.last.signed.step.name} at height {self.last.signed.height} "
                f"round {self.last.signed.round}; refused {Step(payload.step).name} at "
                f"height {payload.height} round {payload.round}"
            )
        signed = sign(self.chain_id, self._key, payload)
        self.last = LastSigned(signed, prepared)
        return signed
