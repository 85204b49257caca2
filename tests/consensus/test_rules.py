"""The engine's parts one rule at a time: message shapes, the signer, timers, proposer, limits."""

from __future__ import annotations

import pytest
from straits.consensus.v1 import consensus_pb2 as pb

from ledger import codec
from ledger.consensus import ConsensusConfig, LastSigned, Message, Prepared, Step
from ledger.consensus.config import MAX_ROUND, ConfigError
from ledger.consensus.justification import proposer_for
from ledger.consensus.messages import sign
from ledger.consensus.round_state import FutureMessages, HeightMessages
from ledger.consensus.signer import Signer
from ledger.errors import DoubleSignError, InvalidMessageError
from tests.consensus.cluster import CHAIN_ID, Cluster
from tests.consensus.keys import validator_key

KEY = validator_key("validator-00")
DIGEST = codec.sha256(b"block")


def payload(step: Step, round: int = 0, height: int = 1, **fields) -> pb.Payload:
    return pb.Payload(step=step.value, height=height, round=round, sender="validator-00", **fields)


def encoded(step: Step, round: int = 0, **fields) -> bytes:
    return Message(sign(CHAIN_ID, KEY, payload(step, round, **fields))).encode()


# --- message shapes ---------------------------------------------------------------------


def test_garbage_bytes_are_refused_as_malformed():
    with pytest.raises(InvalidMessageError) as refused:
        Message.decode(b"\xff\x00garbage", chain_id=CHAIN_ID)
    assert refused.value.reason == "malformed"


@pytest.mark.parametrize(
    "fields",
    [
        {"step": Step.PREPARE},  # no digest
        {"step": Step.COMMIT, "digest": DIGEST},  # commit without its seal
        {"step": Step.PREPARE, "digest": DIGEST, "commit_seal": b"s"},  # seal outside a COMMIT
        {"step": Step.ROUND_CHANGE},  # round change to round 0
        {
            "step": Step.ROUND_CHANGE,
            "round": 2,
            "prepared": True,
            "prepared_round": 2,
            "digest": DIGEST,
        },
        {"step": Step.PREPARE, "digest": DIGEST, "prepared": True},
    ],
)
def test_payloads_that_break_their_steps_shape_cannot_even_be_signed(fields):
    step = fields.pop("step")
    round = fields.pop("round", 0)
    with pytest.raises(InvalidMessageError):
        sign(CHAIN_ID, KEY, payload(step, round, **fields))


def test_a_proposal_without_its_block_is_malformed():
    with pytest.raises(InvalidMessageError, match="carry its block"):
        Message.decode(encoded(Step.PROPOSAL, digest=DIGEST), chain_id=CHAIN_ID)


def test_a_prepared_round_change_without_its_certificate_is_malformed():
    data = encoded(Step.ROUND_CHANGE, round=2, prepared=True, prepared_round=1, digest=DIGEST)
    with pytest.raises(InvalidMessageError, match="certificate"):
        Message.decode(data, chain_id=CHAIN_ID)


def test_a_vote_travels_byte_for_byte():
    data = encoded(Step.PREPARE, round=3, digest=DIGEST)
    decoded = Message.decode(data, chain_id=CHAIN_ID)
    assert decoded.encode() == data
    assert (decoded.signed.step, decoded.signed.round, decoded.signed.digest) == (
        Step.PREPARE,
        3,
        DIGEST,
    )
    assert decoded.signed.verify(CHAIN_ID, KEY.public_key)
    assert not decoded.signed.verify("another-chain", KEY.public_key)


# --- the signer ---------------------------------------------------------------------------


def test_signer_refuses_a_second_opinion_at_a_step_and_anything_below_it():
    signer = Signer(CHAIN_ID, "validator-00", KEY, None)
    first = signer.sign(payload(Step.PREPARE, round=1, digest=DIGEST), None)
    assert signer.sign(payload(Step.PREPARE, round=1, digest=DIGEST), None) is first
    with pytest.raises(DoubleSignError):
        signer.sign(payload(Step.PREPARE, round=1, digest=codec.sha256(b"other")), None)
    with pytest.raises(DoubleSignError):
        signer.sign(payload(Step.COMMIT, round=0, digest=DIGEST, commit_seal=b"x"), None)
    assert signer.may_sign(1, 1, Step.COMMIT) and not signer.may_sign(1, 1, Step.PROPOSAL)


def test_the_last_signed_record_survives_a_restart_with_its_prepared_block():
    cluster = Cluster(4, seed=21)
    cluster.fund_banks()
    cluster.run(5)
    block = cluster.nodes["validator-00"].chain.blocks[0]
    signer = Signer(CHAIN_ID, "validator-00", KEY, None)
    prepares = tuple(
        sign(
            CHAIN_ID,
            validator_key(name),
            pb.Payload(step=pb.STEP_PREPARE, height=1, round=0, sender=name, digest=block.hash),
        )
        for name in ("validator-00", "validator-01", "validator-02")
    )
    prepared = Prepared(0, block.with_seals(()), prepares)
    commit = payload(Step.COMMIT, digest=block.hash, commit_seal=signer.seal(block.hash))
    signer.sign(commit, prepared)
    restored = LastSigned.decode(signer.last.encode(), chain_id=CHAIN_ID)
    assert restored.position == (1, 0, Step.COMMIT.value)
    assert restored.prepared.block.hash == block.hash and len(restored.prepared.prepares) == 3
    after_restart = Signer(CHAIN_ID, "validator-00", KEY, restored)
    with pytest.raises(DoubleSignError):
        after_restart.sign(payload(Step.PREPARE, digest=codec.sha256(b"other")), None)


# --- timers and proposer ------------------------------------------------------------------


def test_round_timers_double_then_stay_at_the_cap_even_for_absurd_rounds():
    config = ConsensusConfig(round_ticks=4, max_round_ticks=64)
    assert [config.round_timeout(r) for r in range(6)] == [4, 8, 16, 32, 64, 64]
    assert config.round_timeout(MAX_ROUND) == 64


def test_a_config_that_could_never_run_is_refused_naming_its_field():
    with pytest.raises(ConfigError) as refused:
        ConsensusConfig(round_ticks=8, max_round_ticks=4)
    assert refused.value.field == "max_round_ticks"


def test_proposer_rotates_after_the_previous_one_and_with_the_round():
    order = ("a", "b", "c", "d")
    assert [proposer_for(order, "b", r) for r in range(5)] == ["c", "d", "a", "b", "c"]
    assert proposer_for(order, "", 0) == "a"
    assert proposer_for(order, "bb", 0) == "c", "a departed proposer hands over to the next name"


# --- bounded memory -----------------------------------------------------------------------


def test_a_validator_voting_in_every_round_holds_a_fixed_amount_of_memory():
    held = HeightMessages(votes_per_sender=8, round_changes_per_sender=4)
    for round in range(2_000):
        vote = sign(CHAIN_ID, KEY, payload(Step.PREPARE, round=round, digest=DIGEST))
        held.add_vote(vote)
        held.add_round_change(
            Message(sign(CHAIN_ID, KEY, payload(Step.ROUND_CHANGE, round=round + 1)))
        )
    kept = [r for r in range(2_000) if held.prepares(r, DIGEST)]
    assert kept == list(range(1_992, 2_000)), "the newest rounds are the ones kept"
    assert held.highest_rounds() == {"validator-00": 2_000}
    assert len(held.round_changes(1_996)) == 0 and len(held.round_changes(1_997)) == 1


def test_future_messages_are_bounded_per_sender_and_in_all():
    future = FutureMessages(limit=3, per_sender=2)
    message = Message(sign(CHAIN_ID, KEY, payload(Step.PREPARE, height=2, digest=DIGEST)))
    assert [future.add(message) for _ in range(3)] == [True, True, False]
    assert len(future.take(2)) == 2 and future.take(2) == []
