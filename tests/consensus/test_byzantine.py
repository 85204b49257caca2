"""Up to f Byzantine validators: each attack alone, then a proposer forging its justification."""

from __future__ import annotations

import zlib

import pytest
from straits.consensus.v1 import consensus_pb2 as pb

from ledger.block import make_seal
from ledger.consensus import BuildProposal, Message, Step
from ledger.consensus.messages import sign
from ledger.quorum import max_faulty
from tests.consensus.byzantine import ATTACKS, Chaos
from tests.consensus.cluster import CHAIN_ID, Cluster, Node
from tests.consensus.test_scenarios import drop_step

# The reason honest nodes must count when the attack reaches them.
EXPECTED_REJECTION = {
    "forged_seal": "bad_seal",
    "reused_seal": "bad_seal",
    "garbage": "malformed",
    "huge_round": "round_cap",
    "huge_height": "far_future",
    "bad_justification": "bad_justification",
    "non_validator": "non_validator",
    "impersonate": "bad_signature",
}


@pytest.mark.parametrize("n", [4, 7])
@pytest.mark.parametrize("attack", ATTACKS)
def test_f_byzantine_validators_with_one_attack_neither_fork_nor_stall_the_chain(attack, n):
    f = max_faulty(n)
    cluster = Cluster(
        n,
        seed=zlib.crc32(f"{attack}-{n}".encode()),
        byzantine={i: Chaos(i, attacks=(attack,), rate=0.5) for i in range(f)},
    )
    cluster.fund_banks()
    for _ in range(15):
        cluster.submit(1)
        cluster.run(10)
    assert cluster.min_honest_height() >= 6, (
        f"{attack}: honest nodes stalled at {cluster.heights()}"
    )
    if attack in EXPECTED_REJECTION:
        reason = EXPECTED_REJECTION[attack]
        counted = sum(n.engine.counters.messages_rejected.get(reason, 0) for n in cluster.honest())
        assert counted > 0, f"{attack} never reached the honest nodes' {reason!r} check"


class ForgedJustification:
    """Proposes a fresh block in its round and votes for it.

    Its justification is its own ROUND-CHANGE, plus, with ``borrow``, the honest
    ones it received: a true quorum, but they report a prepared block that the
    fresh one is not.
    """

    def __init__(self, *, borrow: bool) -> None:
        self.borrow = borrow
        self.forged = 0

    def outgoing(self, node: Node, cluster: Cluster, data: bytes, to: str | None):
        signed = Message.decode(data, chain_id=CHAIN_ID).signed
        if signed.step is not Step.PROPOSAL or signed.round == 0:
            return [(to, data)]
        height, round = signed.height, signed.round
        block = node.chain.build(
            BuildProposal(height, round, node.name, node.chain.head().hash), [], 777
        )
        change = sign(
            CHAIN_ID,
            node.key,
            pb.Payload(step=pb.STEP_ROUND_CHANGE, height=height, round=round, sender=node.name),
        )
        proposal = sign(
            CHAIN_ID,
            node.key,
            pb.Payload(
                step=pb.STEP_PROPOSAL,
                height=height,
                round=round,
                sender=node.name,
                digest=block.hash,
            ),
        )
        prepare = sign(
            CHAIN_ID,
            node.key,
            pb.Payload(
                step=pb.STEP_PREPARE,
                height=height,
                round=round,
                sender=node.name,
                digest=block.hash,
            ),
        )
        changes = [change]
        if self.borrow:
            for data in node.seen:
                seen = Message.decode(data, chain_id=CHAIN_ID).signed
                if seen.step is Step.ROUND_CHANGE and (seen.height, seen.round) == (height, round):
                    changes.append(seen)
        commit = sign(
            CHAIN_ID,
            node.key,
            pb.Payload(
                step=pb.STEP_COMMIT,
                height=height,
                round=round,
                sender=node.name,
                digest=block.hash,
                commit_seal=make_seal(CHAIN_ID, block.hash, node.name, node.key).signature,
            ),
        )
        self.forged += 1
        forged = Message(proposal, block, tuple(changes))
        return [
            (to, forged.encode()),
            (None, Message(prepare).encode()),
            (None, Message(commit).encode()),
        ]

    def on_tick(self, node: Node, cluster: Cluster):
        return []


@pytest.mark.parametrize(
    "borrow", [False, True], ids=["too-few-round-changes", "prepared-block-ignored"]
)
def test_a_proposer_cannot_replace_a_committed_block_with_an_unjustified_one(borrow):
    attacker = ForgedJustification(borrow=borrow)
    cluster = Cluster(
        4, seed=11, byzantine={1: attacker}
    )  # validator-01 proposes round 1 of height 1
    commits_only_to_first = drop_step(Step.COMMIT)
    cluster.network.filters.append(
        lambda s, r, k, p: r != "validator-00" and commits_only_to_first(s, r, k, p)
    )
    cluster.fund_banks()
    assert cluster.run_until(lambda: len(cluster.nodes["validator-00"].chain.blocks) == 1, 10)
    committed = cluster.nodes["validator-00"].chain.blocks[0].hash
    cluster.crash("validator-00")
    cluster.network.filters.clear()
    assert cluster.run_until(lambda: cluster.min_honest_height() >= 1, 400), cluster.heights()
    assert attacker.forged >= 1, "the attacker never got its round"
    for name in ("validator-02", "validator-03"):
        node = cluster.nodes[name]
        assert node.chain.blocks[0].hash == committed
        assert node.engine.counters.proposals_rejected.get("bad_justification", 0) >= 1


def test_validators_that_prepared_a_committed_block_still_report_it_after_a_restart():
    """The committing quorum's honest members restart before the round change: only their
    stored record stands between the attacker's fresh block and a fork."""
    attacker = ForgedJustification(borrow=True)
    cluster = Cluster(4, seed=12, byzantine={1: attacker})
    commits_only_to_first = drop_step(Step.COMMIT)
    cluster.network.filters.append(
        lambda s, r, k, p: r != "validator-00" and commits_only_to_first(s, r, k, p)
    )
    cluster.fund_banks()
    assert cluster.run_until(lambda: len(cluster.nodes["validator-00"].chain.blocks) == 1, 10)
    committed = cluster.nodes["validator-00"].chain.blocks[0].hash
    cluster.crash("validator-00")
    for name in ("validator-02", "validator-03"):
        cluster.crash(name)
        cluster.restart(name)
    cluster.network.filters.clear()
    assert cluster.run_until(lambda: cluster.min_honest_height() >= 1, 400), cluster.heights()
    assert attacker.forged >= 1, "the attacker never got its round"
    assert cluster.nodes["validator-02"].chain.blocks[0].hash == committed
