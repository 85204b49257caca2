"""QBFT messages as values: signed payloads, their decoding and structural checks.

A ``Signed`` keeps the payload bytes exactly as signed, so a signature check
and a certificate carried inside another message never re-serialise. Decoding
checks structure only (steps, digest sizes, which parts each step carries, size
limits); signatures, membership and justification are checked by the engine
against the validator set of the height (``ledger.consensus.justification``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from straits.consensus.v1 import consensus_pb2 as pb

from ledger import codec
from ledger.block import Block, KnownTransactions
from ledger.errors import DecodeError, InvalidBlockError, InvalidMessageError, expected
from ledger.keys import PrivateKey, PublicKey

# A justification holds at most one entry per validator; this bounds decoding work
# before the validator set is even looked at.
MAX_JUSTIFICATION = 1024
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class Step(IntEnum):
    """Steps in the order a validator signs them within one round."""

    ROUND_CHANGE = pb.STEP_ROUND_CHANGE
    PROPOSAL = pb.STEP_PROPOSAL
    PREPARE = pb.STEP_PREPARE
    COMMIT = pb.STEP_COMMIT


@dataclass(frozen=True, slots=True)
class Signed:
    payload: pb.Payload
    payload_bytes: bytes
    signature: bytes
    step: Step

    @property
    def height(self) -> int:
        return self.payload.height

    @property
    def round(self) -> int:
        return self.payload.round

    @property
    def sender(self) -> str:
        return self.payload.sender

    @property
    def digest(self) -> bytes:
        return self.payload.digest

    @property
    def prepared_round(self) -> int | None:
        return self.payload.prepared_round if self.payload.prepared else None

    def verify(self, chain_id: str, key: PublicKey) -> bool:
        return key.verify(
            self.signature, codec.signing_bytes(chain_id, codec.CONSENSUS, self.payload_bytes)
        )

    def to_proto(self) -> pb.SignedPayload:
        return pb.SignedPayload(payload=self.payload_bytes, signature=self.signature)

    @classmethod
    def from_proto(cls, message: pb.SignedPayload) -> Signed:
        payload = codec.decode(pb.Payload, message.payload)
        return cls(payload, message.payload, message.signature, _check_payload(payload))


def sign(chain_id: str, key: PrivateKey, payload: pb.Payload) -> Signed:
    step = _check_payload(payload)
    payload_bytes = codec.encode(payload)
    signature = key.sign(codec.signing_bytes(chain_id, codec.CONSENSUS, payload_bytes))
    return Signed(payload, payload_bytes, signature, step)


@dataclass(frozen=True)
class Message:
    """A signed payload with what its step carries: a block and certificates."""

    signed: Signed
    block: Block | None = None
    round_changes: tuple[Signed, ...] = ()
    prepares: tuple[Signed, ...] = ()

    def to_proto(self) -> pb.ConsensusMessage:
        message = pb.ConsensusMessage(
            signed=self.signed.to_proto(),
            round_changes=[s.to_proto() for s in self.round_changes],
            prepares=[s.to_proto() for s in self.prepares],
        )
        if self.block is not None:
            message.block.ParseFromString(self.block.encode())  # the block's one encoding
        return message

    def encode(self) -> bytes:
        return self.to_proto().SerializeToString()

    @classmethod
    def decode(
        cls, data: bytes, *, chain_id: str, known: KnownTransactions | None = None
    ) -> Message:
        """Parse and check structure; raise ``InvalidMessageError(reason="malformed")``.

        ``known`` lends the block's transactions the receiver decoded already.
        """
        if len(data) > MAX_MESSAGE_BYTES:
            raise _malformed(expected(f"at most {MAX_MESSAGE_BYTES} bytes", len(data)))
        try:
            message = codec.decode(pb.ConsensusMessage, data)
            if (
                len(message.round_changes) > MAX_JUSTIFICATION
                or len(message.prepares) > MAX_JUSTIFICATION
            ):
                raise _malformed(
                    expected(f"at most {MAX_JUSTIFICATION} justification entries", "more")
                )
            signed = Signed.from_proto(message.signed)
            block = (
                Block.from_proto(message.block, chain_id=chain_id, known=known)
                if message.HasField("block")
                else None
            )
            decoded = cls(
                signed=signed,
                block=block,
                round_changes=tuple(Signed.from_proto(s) for s in message.round_changes),
                prepares=tuple(Signed.from_proto(s) for s in message.prepares),
            )
        except (DecodeError, InvalidBlockError, ValueError) as exc:
            raise _malformed(str(exc)) from exc
        decoded.check_structure()
        return decoded

    def check_structure(self) -> None:
        """Each step carries exactly its parts (QBFT's message shapes)."""
        step, signed = self.signed.step, self.signed
        if any(s.step is not Step.ROUND_CHANGE for s in self.round_changes):
            raise _malformed("round_changes must hold ROUND-CHANGE payloads only")
        if any(s.step is not Step.PREPARE for s in self.prepares):
            raise _malformed("prepares must hold PREPARE payloads only")
        if step is Step.PROPOSAL:
            if self.block is None:
                raise _malformed("a PROPOSAL must carry its block")
            if (signed.round == 0) != (not self.round_changes):
                raise _malformed(
                    "a PROPOSAL carries ROUND-CHANGEs exactly when its round is above 0"
                )
        elif step is Step.ROUND_CHANGE:
            if signed.payload.prepared != (self.block is not None) or (self.block is None) == bool(
                self.prepares
            ):
                raise _malformed(
                    "a prepared ROUND-CHANGE carries its block and certificate, others neither"
                )
            if self.round_changes:
                raise _malformed("a ROUND-CHANGE carries no ROUND-CHANGE justification")
        elif self.block is not None or self.round_changes or self.prepares:
            raise _malformed(f"a {step.name} carries no block and no justification")


_STEPS = frozenset(step.value for step in Step)


def _check_payload(payload: pb.Payload) -> Step:
    if payload.step not in _STEPS:
        raise _malformed(expected("a known step", payload.step))
    step = Step(payload.step)
    if not payload.sender:
        raise _malformed("a payload must name its sender")
    digest_needed = step is not Step.ROUND_CHANGE or payload.prepared
    if digest_needed and len(payload.digest) != codec.HASH_SIZE:
        raise _malformed(expected(f"a {codec.HASH_SIZE}-byte digest", len(payload.digest)))
    if not digest_needed and (payload.digest or payload.prepared_round):
        raise _malformed("an unprepared ROUND-CHANGE carries no digest and no prepared round")
    if (step is Step.COMMIT) != bool(payload.commit_seal):
        raise _malformed("a commit seal travels in COMMIT and only there")
    if payload.prepared and step is not Step.ROUND_CHANGE:
        raise _malformed("only a ROUND-CHANGE reports a prepared round")
    if step is Step.ROUND_CHANGE and payload.round == 0:
        raise _malformed("a ROUND-CHANGE moves to a round above 0")
    if payload.prepared and payload.prepared_round >= payload.round:
        raise _malformed(
            expected(f"a prepared round below {payload.round}", payload.prepared_round)
        )
    return step


def _malformed(detail: str) -> InvalidMessageError:
    return InvalidMessageError(detail, reason="malformed")
