"""A Ready is carried out in the order safety needs, by the node loop and the simulation alike.

The last-signed record is on disk before any message signed under it leaves, messages
leave before the block is written, and the engine moves to the next height only after
the write; Readies that follow are carried out in the order they were made, so the
record never goes back. A validator that dies right after its proposal left comes back
bound by the record and signs nothing that conflicts with it.
"""

from __future__ import annotations

import pytest

from ledger.consensus import (
    BuildProposal,
    FetchBlocks,
    LastSigned,
    Outbound,
    Ready,
    Runner,
    Step,
)
from ledger.errors import StoreError
from tests.consensus.cluster import CHAIN_ID, Cluster

PROGRESS_TICKS = 400


class Record:
    """Stands in for a ``LastSigned``: the runner only encodes it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def encode(self) -> bytes:
        return self.name.encode()


class ScriptedEngine:
    """Answers the runner's calls with Readies fixed in advance, and notes the calls."""

    def __init__(self, **answers: Ready) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def _answer(self, call: str) -> Ready:
        self.calls.append(call)
        return self.answers.get(call, Ready())

    def propose(self, block: object) -> Ready:
        return self._answer("propose")

    def advance(self) -> Ready:
        return self._answer("advance")

    def transactions_available(self) -> Ready:
        return self._answer("transactions_available")


class Recorder:
    """The store, transport, chain and proposer at once, writing down what it is asked."""

    def __init__(self, *, waiting: bool = False, fail_commit: bool = False) -> None:
        self.log: list[tuple[str, object]] = []
        self.waiting = waiting
        self.fail_commit = fail_commit

    def save_last_signed(self, record: bytes) -> None:
        self.log.append(("persist", record.decode()))

    def send(self, data: bytes, to: str | None) -> None:
        self.log.append(("send", data.decode()))

    def fetch(self, request: FetchBlocks) -> None:
        self.log.append(("fetch", request.from_height))

    def commit(self, block: object) -> None:
        if self.fail_commit:
            raise StoreError("expected room on the disk, got none")
        self.log.append(("commit", block))

    def build(self, request: BuildProposal) -> str:
        self.log.append(("build", request.height))
        return f"block {request.height}"

    def transactions_waiting(self) -> bool:
        return self.waiting


def runner_for(engine: ScriptedEngine, io: Recorder) -> Runner:
    return Runner(engine, store=io, transport=io, chain=io, proposer=io)  # type: ignore[arg-type]


def ready(record: str | None = None, *sent: str, **parts: object) -> Ready:
    return Ready(
        last_signed=Record(record) if record else None,  # type: ignore[arg-type]
        messages=tuple(Outbound(m.encode()) for m in sent),
        **parts,  # type: ignore[arg-type]
    )


def test_persist_precedes_send_precedes_commit_and_advance_follows_the_commit() -> None:
    engine = ScriptedEngine(
        advance=ready("record 3", "round change at 6"),
        transactions_available=ready(None, "nothing signed"),
    )
    io = Recorder(waiting=True)
    runner_for(engine, io).carry_out(
        ready(
            "record 1",
            "commit at 5",
            "prepare at 5",
            committed=("block 5",),
            fetch=FetchBlocks(6, 8, ("validator-02",)),
        )
    )
    assert io.log == [
        ("persist", "record 1"),
        ("send", "commit at 5"),
        ("send", "prepare at 5"),
        ("commit", "block 5"),
        ("fetch", 6),
        ("persist", "record 3"),
        ("send", "round change at 6"),
        ("send", "nothing signed"),
    ]
    assert engine.calls == ["advance", "transactions_available"]


def test_readies_that_follow_are_carried_out_in_the_order_they_were_made() -> None:
    """The proposal's Ready was made before the next height's: its record is older and
    must reach the disk first, or the record would go back."""
    engine = ScriptedEngine(
        propose=ready("record 2", "proposal at 6"),
        advance=ready("record 3", "round change at 6"),
    )
    io = Recorder()
    runner_for(engine, io).carry_out(
        ready(
            "record 1",
            "commit at 5",
            committed=("block 5",),
            build=BuildProposal(6, 0, "validator-00", b"parent"),
        )
    )
    persisted = [what for kind, what in io.log if kind == "persist"]
    assert persisted == ["record 1", "record 2", "record 3"]
    assert engine.calls == ["propose", "advance"]
    assert ("build", 6) in io.log


def test_a_commit_that_fails_leaves_the_engine_at_its_height() -> None:
    engine = ScriptedEngine()
    io = Recorder(fail_commit=True)
    with pytest.raises(StoreError):
        runner_for(engine, io).carry_out(ready("record 1", "commit at 5", committed=("block 5",)))
    assert io.log == [("persist", "record 1"), ("send", "commit at 5")]
    assert engine.calls == [], "the engine must not advance past a block that is not stored"


def test_a_proposer_that_dies_right_after_its_proposal_left_signs_no_second_proposal() -> None:
    """Had the proposal left before its record was on disk, the restarted proposer would
    build a new block for the same round (a later timestamp) and sign it: the cluster
    reports that as a double signature."""
    cluster = Cluster(4, seed=5)
    proposer = "validator-00"  # round-robin proposer of height 1, round 0
    cluster.crash_after_sending(proposer, lambda message: message.signed.step is Step.PROPOSAL)
    cluster.fund_banks()
    node = cluster.nodes[proposer]
    assert not node.alive, "the proposer should have died as its proposal left"
    assert node.record is not None
    record = LastSigned.decode(node.record, chain_id=CHAIN_ID)
    # The proposal, and its own PREPARE signed with it, are covered by the record on disk.
    assert (record.signed.height, record.signed.round) == (1, 0)
    assert record.signed.step >= Step.PROPOSAL
    assert node.chain.blocks == []

    cluster.run(1)
    cluster.restart(proposer)  # storage only: its record and its empty chain
    assert cluster.run_until(lambda: cluster.min_honest_height() >= 2, PROGRESS_TICKS), (
        cluster.heights()
    )
    first = {n.name: n.chain.blocks[0] for n in cluster.honest()}
    assert {b.hash for b in first.values()} == {first["validator-01"].hash}
    assert first["validator-01"].header.proposer == proposer
    assert first["validator-01"].header.round == 0
