"""QBFT validity rules as pure functions: proposer choice, certificates, justifications.

Each check raises ``InvalidMessageError`` with a short ``reason`` (counted in the
metrics) or returns. They follow the L1 predicates of Consensys' Dafny QBFT
specification (named in each docstring) with one deliberate difference of
convention: a prepared block is re-proposed unchanged (same hash; its header
keeps the round and proposer of its first proposal), so the digest in a
ROUND-CHANGE is the re-proposed block's own hash and commit seals from
different rounds of one block combine.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ledger.block import Block, seal_bytes, verify_seals
from ledger.consensus.application import Application
from ledger.consensus.messages import Message, Signed, Step
from ledger.errors import InvalidBlockError, InvalidMessageError, QuorumError, expected
from ledger.keys import PublicKey
from ledger.quorum import quorum

Verify = Callable[[Signed], bool]


def proposer_for(order: Sequence[str], previous_proposer: str, round: int) -> str:
    """Round-robin: the validator after the previous block's proposer, plus ``round``.

    ``order`` is the sorted validator set of the height. If the previous proposer
    has left the set, the next one is the first name that sorts after it, so the
    choice needs only this height's set (Dafny ``proposer``).
    """
    start = bisect.bisect_right(order, previous_proposer) if previous_proposer else 0
    return order[(start + round) % len(order)]


@dataclass(frozen=True)
class HeightContext:
    """What a check needs to know about the height being decided."""

    chain_id: str
    height: int
    parent_hash: bytes
    validators: Mapping[str, PublicKey]
    order: tuple[str, ...]
    previous_proposer: str

    def proposer(self, round: int) -> str:
        return proposer_for(self.order, self.previous_proposer, round)

    @property
    def quorum(self) -> int:
        return quorum(len(self.validators))


def check_signed(signed: Signed, ctx: HeightContext, verify: Verify) -> None:
    """Sender in the set of the height, signature valid (``recoverSigned*Author in validators``)."""
    if signed.height != ctx.height:
        raise InvalidMessageError(
            expected(f"height {ctx.height}", signed.height), reason="wrong_height"
        )
    if signed.sender not in ctx.validators:
        raise InvalidMessageError(
            expected("a validator of the height", signed.sender), reason="non_validator"
        )
    if not verify(signed):
        raise InvalidMessageError(
            f"signature of {signed.sender} does not verify", reason="bad_signature"
        )


def expected_round(current: int, came: int) -> str:
    return f"expected round {current} or later, got {came}"


def check_vote(signed: Signed, ctx: HeightContext, current_round: int, lookahead: int) -> None:
    """A PREPARE for this round or a few ahead; a COMMIT up to a few ahead with a valid seal
    (``validateCommit``: the seal is the sender's signature over the block hash)."""
    if signed.round > current_round + lookahead:
        raise InvalidMessageError(expected_round(current_round, signed.round), reason="round_cap")
    if signed.step is Step.PREPARE and signed.round < current_round:
        raise InvalidMessageError(expected_round(current_round, signed.round), reason="old_round")
    if signed.step is Step.COMMIT:
        seal = seal_bytes(ctx.chain_id, signed.digest)
        if not ctx.validators[signed.sender].verify(signed.payload.commit_seal, seal):
            raise InvalidMessageError(f"seal of {signed.sender} does not verify", reason="bad_seal")


def check_synced(block: Block, ctx: HeightContext, application: Application) -> None:
    """A fetched block extends the head, carries a seal quorum of the height's set and is valid
    (``validNewBlockMessage``), whoever sent it."""
    try:
        if block.header.parent_hash != ctx.parent_hash:
            raise InvalidBlockError("synced block does not extend the head", field="parent_hash")
        verify_seals(block, ctx.validators)
        application.validate(block)
    except QuorumError as exc:
        raise InvalidMessageError(str(exc), reason="bad_seals") from exc
    except InvalidBlockError as exc:
        raise InvalidMessageError(str(exc), reason="invalid_block") from exc


def check_prepare_certificate(
    prepares: Sequence[Signed], ctx: HeightContext, round: int, digest: bytes, verify: Verify
) -> None:
    """A quorum of distinct validators PREPAREd ``digest`` in ``round``
    (``validSignedPrepareForHeightRoundAndDigest`` for each, quorum of them)."""
    senders: set[str] = set()
    for prepare in prepares:
        if prepare.step is not Step.PREPARE or prepare.round != round or prepare.digest != digest:
            raise InvalidMessageError(
                expected(
                    f"PREPAREs for round {round} digest {digest.hex()[:12]}",
                    f"round {prepare.round}",
                ),
                reason="bad_certificate",
            )
        check_signed(prepare, ctx, verify)
        senders.add(prepare.sender)
    if len(senders) < ctx.quorum:
        raise InvalidMessageError(
            expected(f"{ctx.quorum} distinct PREPAREs", len(senders)), reason="bad_certificate"
        )


def check_block_header(block: Block, ctx: HeightContext, digest: bytes) -> None:
    if block.hash != digest:
        raise InvalidMessageError(
            "block hash differs from the signed digest", reason="digest_mismatch"
        )
    if block.height != ctx.height or block.header.parent_hash != ctx.parent_hash:
        raise InvalidMessageError(
            expected(f"a block at height {ctx.height} on the head", f"height {block.height}"),
            reason="wrong_parent",
        )
    first_proposer = ctx.proposer(block.header.round)
    if block.header.proposer != first_proposer:
        raise InvalidMessageError(
            expected(
                f"header.proposer {first_proposer} of round {block.header.round}",
                block.header.proposer,
            ),
            reason="wrong_proposer",
        )


def check_round_change(message: Message, ctx: HeightContext, verify: Verify) -> None:
    """``validRoundChange`` plus, when prepared, the certificate and block it carries."""
    signed = message.signed
    check_signed(signed, ctx, verify)
    if signed.prepared_round is None or message.block is None:
        return
    check_block_header(message.block, ctx, signed.digest)
    if message.block.header.round > signed.prepared_round:
        raise InvalidMessageError(
            "prepared block first proposed after its prepared round", reason="bad_certificate"
        )
    check_prepare_certificate(message.prepares, ctx, signed.prepared_round, signed.digest, verify)


def highest_prepared(round_changes: Sequence[Signed]) -> Signed | None:
    """The ROUND-CHANGE with the highest prepared round (``isHighestPrepared``); ties by sender."""
    prepared = [rc for rc in round_changes if rc.prepared_round is not None]
    return max(prepared, key=lambda rc: (rc.prepared_round, rc.sender), default=None)


def check_proposal(message: Message, ctx: HeightContext, verify: Verify) -> None:
    """``isValidProposal`` / ``isProposalJustification`` for the block carried.

    Round 0: the round's proposer sent it and the block is fresh. Round r > 0: a
    quorum of valid ROUND-CHANGEs for (height, r); if none reports a prepared
    block the block is fresh, else it is the block of the highest prepared
    round, re-proposed unchanged with a quorum PREPARE certificate for it.
    Block validity against the ledger is the caller's (application) check.
    """
    signed, block = message.signed, message.block
    if block is None:
        raise InvalidMessageError("a PROPOSAL carries a block", reason="malformed")
    check_signed(signed, ctx, verify)
    if signed.sender != ctx.proposer(signed.round):
        raise InvalidMessageError(
            expected(
                f"proposer {ctx.proposer(signed.round)} for round {signed.round}", signed.sender
            ),
            reason="wrong_proposer",
        )
    check_block_header(block, ctx, signed.digest)
    if signed.round == 0:
        _check_fresh(block, 0)
        return
    senders: set[str] = set()
    for rc in message.round_changes:
        if rc.round != signed.round:
            raise InvalidMessageError(
                expected(f"ROUND-CHANGEs for round {signed.round}", rc.round),
                reason="bad_justification",
            )
        check_signed(rc, ctx, verify)
        senders.add(rc.sender)
    if len(senders) < ctx.quorum:
        raise InvalidMessageError(
            expected(f"{ctx.quorum} distinct ROUND-CHANGEs", len(senders)),
            reason="bad_justification",
        )
    best = highest_prepared(message.round_changes)
    if best is None:
        _check_fresh(block, signed.round)
        if message.prepares:
            raise InvalidMessageError(
                "a fresh proposal carries no PREPARE certificate", reason="bad_justification"
            )
        return
    highest = [rc for rc in message.round_changes if rc.prepared_round == best.prepared_round]
    if all(rc.digest != block.hash for rc in highest):
        raise InvalidMessageError(
            "proposal is not the block of the highest prepared round", reason="bad_justification"
        )
    check_prepare_certificate(message.prepares, ctx, best.prepared_round or 0, block.hash, verify)


def _check_fresh(block: Block, round: int) -> None:
    if block.header.round != round:
        raise InvalidMessageError(
            expected(f"a fresh block with header.round {round}", block.header.round),
            reason="bad_justification",
        )
