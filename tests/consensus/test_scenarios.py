"""The textbook cases of QBFT, one story each, on a reliable simulated network of four."""

from __future__ import annotations

from ledger.consensus import Message, Step
from ledger.errors import InvalidMessageError
from tests.consensus.cluster import CHAIN_ID, Cluster

PROGRESS_TICKS = 400


def drop_step(step: Step):
    def dropped(sender: str, receiver: str, kind: str, payload: object) -> bool:
        if kind != "consensus":
            return False
        try:
            return Message.decode(payload, chain_id=CHAIN_ID).signed.step is step  # type: ignore[arg-type]
        except InvalidMessageError:
            return False

    return dropped


def block_at(cluster: Cluster, name: str, height: int):
    return cluster.nodes[name].chain.blocks[height - 1]


def test_an_idle_network_commits_only_heartbeat_blocks_and_they_are_empty():
    cluster = Cluster(4, seed=1)
    cluster.run(cluster.config.heartbeat_ticks - 1)
    assert cluster.min_honest_height() == 0, (
        "an empty block was produced before the heartbeat was due"
    )
    assert cluster.run_until(
        lambda: cluster.min_honest_height() >= 2, 3 * cluster.config.heartbeat_ticks
    )
    assert all(not b.transactions for b in cluster.nodes["validator-00"].chain.blocks)
    assert cluster.nodes["validator-01"].engine.counters.heartbeat_blocks >= 1


def test_payments_are_settled_in_the_next_block_without_waiting_for_the_heartbeat():
    cluster = Cluster(4, seed=2)
    cluster.fund_banks()
    assert cluster.run_until(lambda: cluster.min_honest_height() >= 1, 10)
    assert len(block_at(cluster, "validator-02", 1).transactions) == 3


def test_proposer_crash_before_proposing_the_next_proposer_takes_round_one():
    cluster = Cluster(4, seed=3)
    cluster.crash("validator-00")  # round-robin proposer of height 1, round 0
    cluster.fund_banks()
    assert cluster.run_until(lambda: cluster.min_honest_height() >= 1, PROGRESS_TICKS), (
        cluster.heights()
    )
    block = block_at(cluster, "validator-01", 1)
    assert (block.header.round, block.header.proposer) == (1, "validator-01")
    assert cluster.nodes["validator-02"].engine.counters.round_changes >= 1


def test_block_prepared_by_a_quorum_survives_the_round_change_and_a_restart():
    cluster = Cluster(4, seed=4)
    cluster.network.filters.append(drop_step(Step.COMMIT))
    cluster.fund_banks()
    cluster.run(3)  # proposal and PREPAREs delivered: a quorum has prepared, no one committed
    prepared = {n.name: n.engine.prepared for n in cluster.honest() if n.alive}
    assert all(p is not None for p in prepared.values()), "the quorum should have prepared block 1"
    proposed = prepared["validator-01"].block.hash
    cluster.crash("validator-00")
    cluster.crash("validator-02")  # a prepared node loses its memory but not its storage
    cluster.network.filters.clear()
    cluster.restart("validator-02")
    assert cluster.run_until(lambda: cluster.min_honest_height() >= 1, PROGRESS_TICKS), (
        cluster.heights()
    )
    block = block_at(cluster, "validator-03", 1)
    assert block.hash == proposed, (
        "a prepared block must be the one re-proposed after the round change"
    )
    assert block.header.round == 0 and block.header.proposer == "validator-00"


def test_two_two_partition_makes_no_progress_and_no_fork_then_heals():
    cluster = Cluster(4, seed=5)
    cluster.fund_banks()
    cluster.run(10)
    before = cluster.heights()
    cluster.partition(["validator-00", "validator-01"], ["validator-02", "validator-03"])
    cluster.submit(3)
    cluster.run(600)
    assert cluster.heights() == before, "a side without a quorum committed a block"
    cluster.heal()
    target = max(before.values()) + 1
    assert cluster.run_until(lambda: cluster.min_honest_height() >= target, PROGRESS_TICKS), (
        cluster.heights()
    )


def test_losing_more_than_f_stops_the_chain_and_it_resumes_when_they_return():
    cluster = Cluster(4, seed=6)
    cluster.fund_banks()
    cluster.run(10)
    before = cluster.min_honest_height()
    cluster.crash("validator-01")
    cluster.crash("validator-02")
    cluster.submit(2)
    cluster.run(1000)
    assert cluster.min_honest_height(alive_only=False) == before
    rounds = [n.engine.round for n in cluster.honest() if n.alive]
    assert min(rounds) >= 10, f"timers should keep moving rounds while stuck, rounds {rounds}"
    cluster.restart("validator-01")
    cluster.restart("validator-02")
    assert cluster.run_until(lambda: cluster.min_honest_height() >= before + 1, PROGRESS_TICKS), (
        cluster.heights()
    )


def test_a_restarted_validator_catches_up_by_sync_and_checks_the_seals():
    cluster = Cluster(4, seed=7)
    cluster.crash("validator-03")
    cluster.fund_banks()
    for _ in range(5):
        cluster.submit(1)
        cluster.run(8)
    lead = max(cluster.heights().values())
    assert lead >= 5
    cluster.restart("validator-03")
    assert cluster.run_until(lambda: cluster.heights()["validator-03"] >= lead, PROGRESS_TICKS), (
        cluster.heights()
    )
    assert cluster.nodes["validator-03"].engine.counters.blocks_synced >= lead - 1


def test_validator_added_then_removed_through_governance():
    cluster = Cluster(4, seed=8, real_ledger=True)
    cluster.fund_banks()
    cluster.run(5)
    height = cluster.min_honest_height()
    joined = [f"validator-0{i}" for i in range(5)]
    cluster.propose_validators(joined, effective_height=height + 4)
    newcomer = cluster.add_node("validator-04")
    for _ in range(12):
        cluster.submit(1)
        cluster.run(6)
    sealers = {s.validator for b in newcomer.chain.blocks[height + 4 :] for s in b.seals}
    assert len(newcomer.chain.blocks) >= height + 8, cluster.heights()
    assert "validator-04" in sealers, "the added validator should seal blocks once effective"
    removal_height = len(newcomer.chain.blocks) + 3
    cluster.propose_validators(joined[1:], effective_height=removal_height)
    cluster.run(20)
    cluster.crash("validator-00")
    assert cluster.run_until(
        lambda: cluster.min_honest_height() >= removal_height + 3, PROGRESS_TICKS
    )
    after = [b for b in newcomer.chain.blocks if b.height >= removal_height]
    assert after and all(s.validator != "validator-00" for b in after for s in b.seals)
    assert set(newcomer.chain.state.validators) == set(joined[1:])


def test_a_returning_validator_jumps_to_the_round_f_plus_one_others_reached():
    cluster = Cluster(4, seed=9)
    cluster.crash("validator-02")
    cluster.crash("validator-03")
    cluster.submit(1)
    cluster.run(400)
    stuck = min(cluster.nodes[name].engine.round for name in ("validator-00", "validator-01"))
    assert stuck >= 5
    cluster.restart("validator-02")
    returning = cluster.nodes["validator-02"].engine
    assert cluster.run_until(
        lambda: returning.round >= stuck or cluster.min_honest_height() >= 1,
        cluster.config.rebroadcast_ticks + 2,
    )
    assert returning.counters.round_changes <= 2, (
        "it should jump, not walk, up to the others' round"
    )
