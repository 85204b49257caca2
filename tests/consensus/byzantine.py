"""Byzantine validators for the simulation: they hold a real validator key and lie with it.

``Chaos`` runs an honest engine underneath (so it knows the height and round)
and rewrites or adds to what it sends: an equivocating proposer (different
blocks to different peers), conflicting PREPAREs and COMMITs, forged and reused
seals, proposals with bad or missing justification, replays of old messages,
huge rounds and heights, garbage bytes, impersonation, and messages from a key
that is no validator at all. Each attack can be switched on alone.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from straits.consensus.v1 import consensus_pb2 as pb

from ledger import codec
from ledger.block import make_seal
from ledger.consensus import BuildProposal, Message, Step
from ledger.consensus.messages import sign
from ledger.errors import InvalidMessageError
from ledger.keys import PrivateKey
from tests.consensus.cluster import CHAIN_ID, Cluster, Node

REWRITES = ("equivocate", "conflicting_votes", "forged_seal", "reused_seal", "silent")
INJECTIONS = (
    "garbage",
    "huge_round",
    "huge_height",
    "replay",
    "bad_justification",
    "non_validator",
    "impersonate",
)
ATTACKS = REWRITES + INJECTIONS

Out = list[tuple[str | None, bytes]]


class Chaos:
    def __init__(self, seed: int, attacks: Sequence[str] = ATTACKS, rate: float = 0.3) -> None:
        self.rng = random.Random(seed)
        self.attacks = tuple(attacks)
        self.rate = rate
        self.outsider = PrivateKey.from_seed(codec.sha256(b"mallory"))
        self.seals_seen: list[tuple[str, bytes]] = []

    def _pick(self, among: Sequence[str]) -> str | None:
        usable = [a for a in among if a in self.attacks]
        if not usable or self.rng.random() >= self.rate:
            return None
        return self.rng.choice(usable)

    # --- rewriting what the honest engine underneath sends -----------------------------

    def outgoing(self, node: Node, cluster: Cluster, data: bytes, to: str | None) -> Out:
        message = Message.decode(data, chain_id=CHAIN_ID)
        signed = message.signed
        attack = self._pick(REWRITES)
        peers = sorted(n for n in cluster.nodes if n != node.name)
        half = peers[: len(peers) // 2]
        rest = peers[len(peers) // 2 :]
        if attack == "silent":
            return []
        if attack == "equivocate" and signed.step is Step.PROPOSAL and message.block is not None:
            other = self._other_block(node, cluster, message)
            if other is not None:
                return [(p, data) for p in half] + [(p, other) for p in rest]
        if attack == "conflicting_votes" and signed.step in (Step.PREPARE, Step.COMMIT):
            other = self._vote(
                node, signed.step, signed.height, signed.round, self.rng.randbytes(32)
            )
            return [(p, data) for p in half] + [(p, other) for p in rest]
        if attack in ("forged_seal", "reused_seal") and signed.step is Step.COMMIT:
            seal = self.rng.randbytes(64)
            if attack == "reused_seal" and self.seals_seen:
                seal = self.rng.choice(self.seals_seen)[1]
            payload = pb.Payload()
            payload.CopyFrom(signed.payload)
            payload.commit_seal = seal
            return [(to, Message(sign(CHAIN_ID, node.key, payload)).encode())]
        return [(to, data)]

    def _other_block(self, node: Node, cluster: Cluster, message: Message) -> bytes | None:
        signed, block = message.signed, message.block
        assert block is not None
        request = BuildProposal(
            block.height, block.header.round, block.header.proposer, block.header.parent_hash
        )
        other = node.chain.build(
            request, cluster.pending[::-1], timestamp_ms=block.header.timestamp_ms + 1
        )
        if other.hash == block.hash:
            return None
        payload = pb.Payload()
        payload.CopyFrom(signed.payload)
        payload.digest = other.hash
        forged = Message(
            sign(CHAIN_ID, node.key, payload), other, message.round_changes, message.prepares
        )
        return forged.encode()

    def _vote(self, node: Node, step: Step, height: int, round: int, digest: bytes) -> bytes:
        payload = pb.Payload(
            step=step.value, height=height, round=round, sender=node.name, digest=digest
        )
        if step is Step.COMMIT:
            payload.commit_seal = make_seal(CHAIN_ID, digest, node.name, node.key).signature
        return Message(sign(CHAIN_ID, node.key, payload)).encode()

    # --- adding messages of its own -----------------------------------------------------

    def on_tick(self, node: Node, cluster: Cluster) -> Out:
        for data in node.seen[-4:]:
            self._remember_seal(data)
        attack = self._pick(INJECTIONS)
        engine = node.engine
        if attack is None or engine is None:
            return []
        height, round = engine.height, engine.round
        if attack == "garbage":
            return [(None, self.rng.randbytes(self.rng.randint(0, 200)))]
        if attack == "huge_round":
            payload = pb.Payload(
                step=pb.STEP_ROUND_CHANGE, height=height, round=2**32 - 1, sender=node.name
            )
            return [(None, Message(sign(CHAIN_ID, node.key, payload)).encode())]
        if attack == "huge_height":
            return [
                (
                    None,
                    self._vote(node, Step.PREPARE, height + 10**12, round, self.rng.randbytes(32)),
                )
            ]
        if attack == "replay" and node.seen:
            return [(None, self.rng.choice(node.seen))]
        if attack == "bad_justification":
            return [(None, self._unjustified_proposal(node, cluster, height, round + 1))]
        if attack == "non_validator":
            payload = pb.Payload(
                step=pb.STEP_ROUND_CHANGE, height=height, round=round + 1, sender="mallory"
            )
            return [(None, Message(sign(CHAIN_ID, self.outsider, payload)).encode())]
        if attack == "impersonate":
            victim = self.rng.choice(sorted(n for n in cluster.nodes if n != node.name))
            payload = pb.Payload(
                step=pb.STEP_ROUND_CHANGE, height=height, round=round + 1, sender=victim
            )
            return [(None, Message(sign(CHAIN_ID, node.key, payload)).encode())]
        return []

    def _unjustified_proposal(self, node: Node, cluster: Cluster, height: int, round: int) -> bytes:
        """A fresh block for a later round justified by the sender's own ROUND-CHANGE only."""
        parent = node.chain.head().hash
        block = node.chain.build(
            BuildProposal(height, round, node.name, parent), cluster.pending, cluster.now
        )
        change = sign(
            CHAIN_ID,
            node.key,
            pb.Payload(step=pb.STEP_ROUND_CHANGE, height=height, round=round, sender=node.name),
        )
        payload = pb.Payload(
            step=pb.STEP_PROPOSAL, height=height, round=round, sender=node.name, digest=block.hash
        )
        return Message(sign(CHAIN_ID, node.key, payload), block, (change,)).encode()

    def _remember_seal(self, data: bytes) -> None:
        try:
            message = Message.decode(data, chain_id=CHAIN_ID)
        except InvalidMessageError:
            return
        seen = (message.signed.sender, message.signed.payload.commit_seal)
        if message.signed.step is Step.COMMIT and seen not in self.seals_seen:
            self.seals_seen = [*self.seals_seen[-15:], seen]
