"""A validator that lost its last-signed record signs nothing at or below a height."""

from __future__ import annotations

import hashlib

import pytest
from straits.consensus.v1 import consensus_pb2 as pb

from ledger.consensus.messages import Step
from ledger.consensus.signer import Signer
from ledger.errors import DoubleSignError
from ledger.keys import PrivateKey

KEY = PrivateKey.from_seed(hashlib.sha256(b"validator-2").digest())


def prepare(height: int, round: int = 0) -> pb.Payload:
    return pb.Payload(
        height=height, round=round, step=Step.PREPARE.value, sender="validator-2", digest=bytes(32)
    )


def test_an_abstaining_signer_signs_nothing_through_its_height_and_signs_above_it() -> None:
    signer = Signer("chain", "validator-2", KEY, None, abstain_through=7)

    assert not signer.may_sign(7, 5, Step.COMMIT)
    with pytest.raises(DoubleSignError, match="signing nothing through height 7"):
        signer.sign(prepare(7, round=3), None)
    assert signer.last is None

    assert signer.may_sign(8, 0, Step.PREPARE)
    assert signer.sign(prepare(8), None).height == 8


def test_lowering_the_abstention_lets_it_sign_above_the_new_height() -> None:
    signer = Signer("chain", "validator-2", KEY, None, abstain_through=2**63 - 1)
    assert not signer.may_sign(1, 0, Step.PREPARE)

    signer.abstain_through = 0
    assert signer.may_sign(1, 0, Step.PREPARE)
