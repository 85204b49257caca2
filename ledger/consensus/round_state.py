"""Messages received for the height being decided, with memory bounded per sender.

PREPAREs and COMMITs are kept one per (step, round, sender): a second, different
vote from the same sender at the same place is equivocation and is not counted.
COMMITs are indexed by digest across rounds, since a seal covers the block hash
only and a re-proposed block keeps its hash. A sender holds at most
``votes_per_sender`` votes and ``round_changes_per_sender`` ROUND-CHANGEs; past
that its lowest-round entries are evicted first, so a Byzantine validator
sending every round costs a fixed amount of memory.
"""

from __future__ import annotations

from collections import defaultdict
from enum import Enum

from ledger.block import Block
from ledger.consensus.messages import Message, Signed, Step


class Added(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    EQUIVOCATION = "equivocation"


class HeightMessages:
    def __init__(self, *, votes_per_sender: int, round_changes_per_sender: int = 4) -> None:
        self._votes_per_sender = votes_per_sender
        self._round_changes_per_sender = round_changes_per_sender
        self._votes: dict[tuple[Step, int, str], Signed] = {}
        self._by_sender: dict[str, set[tuple[Step, int, str]]] = defaultdict(set)
        self._round_changes: dict[str, dict[int, Message]] = defaultdict(dict)
        self.blocks: dict[bytes, Block] = {}

    def seen(self, signed: Signed) -> bool:
        """Byte-identical to what is held already: skip before spending a signature check."""
        if signed.step is Step.ROUND_CHANGE:
            held = self._round_changes.get(signed.sender, {}).get(signed.round)
            return held is not None and _same(held.signed, signed)
        held_vote = self._votes.get((signed.step, signed.round, signed.sender))
        return held_vote is not None and _same(held_vote, signed)

    def add_vote(self, signed: Signed) -> Added:
        key = (signed.step, signed.round, signed.sender)
        held = self._votes.get(key)
        if held is not None:
            return Added.DUPLICATE if _same(held, signed) else Added.EQUIVOCATION
        keys = self._by_sender[signed.sender]
        if len(keys) >= self._votes_per_sender:
            oldest = min(keys, key=lambda k: (k[1], k[0].value))
            keys.discard(oldest)
            del self._votes[oldest]
        keys.add(key)
        self._votes[key] = signed
        return Added.NEW

    def prepares(self, round: int, digest: bytes) -> list[Signed]:
        return sorted(
            (
                v
                for (step, r, _), v in self._votes.items()
                if step is Step.PREPARE and r == round and v.digest == digest
            ),
            key=lambda v: v.sender,
        )

    def commits(self, digest: bytes) -> dict[str, Signed]:
        """One COMMIT per sender for ``digest``, from whichever round came first."""
        found: dict[str, Signed] = {}
        for (step, _, sender), vote in sorted(self._votes.items(), key=lambda kv: kv[0][1]):
            if step is Step.COMMIT and vote.digest == digest:
                found.setdefault(sender, vote)
        return found

    def drop_prepares_below(self, round: int) -> None:
        stale = [k for k in self._votes if k[0] is Step.PREPARE and k[1] < round]
        for key in stale:
            del self._votes[key]
            self._by_sender[key[2]].discard(key)

    def add_round_change(self, message: Message) -> Added:
        signed = message.signed
        held = self._round_changes[signed.sender]
        if signed.round in held:
            return (
                Added.DUPLICATE if _same(held[signed.round].signed, signed) else Added.EQUIVOCATION
            )
        held[signed.round] = message
        if len(held) > self._round_changes_per_sender:
            del held[min(held)]
        return Added.NEW

    def round_changes(self, round: int) -> list[Message]:
        return [held[round] for _, held in sorted(self._round_changes.items()) if round in held]

    def highest_rounds(self) -> dict[str, int]:
        return {sender: max(held) for sender, held in self._round_changes.items() if held}


def _same(a: Signed, b: Signed) -> bool:
    return a.payload_bytes == b.payload_bytes and a.signature == b.signature


class FutureMessages:
    """Messages for the next few heights, held until the engine gets there.

    Bounded in all and per sender; the engine admits only messages signed by a
    validator of its current set, so made-up senders cannot fill it.
    """

    def __init__(self, *, limit: int, per_sender: int) -> None:
        self._limit = limit
        self._per_sender = per_sender
        self._held: list[Message] = []
        self._count: dict[str, int] = defaultdict(int)

    def add(self, message: Message) -> bool:
        sender = message.signed.sender
        if len(self._held) >= self._limit or self._count[sender] >= self._per_sender:
            return False
        self._held.append(message)
        self._count[sender] += 1
        return True

    def take(self, height: int) -> list[Message]:
        """Hand out the messages for ``height``; forget those for heights already passed."""
        ready = [m for m in self._held if m.signed.height == height]
        self._held = [m for m in self._held if m.signed.height > height]
        self._count = defaultdict(int)
        for message in self._held:
            self._count[message.signed.sender] += 1
        return ready
