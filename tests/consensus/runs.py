"""One seeded run of the simulated network: faults, Byzantine peers, then heal and check liveness.

The seed fixes everything: the cluster size (4, 7 or 10), the Byzantine peers
(at most f), link faults, partitions, crashes and restarts, the payments. Safety
is checked on every commit by the cluster; here, after the chaos phase, the
network heals, crashed nodes restart, and every honest node must finalise new
blocks within ``LIVENESS_TICKS``. A failure raises with the seed in its message.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ledger.quorum import max_faulty
from tests.consensus.byzantine import Chaos
from tests.consensus.cluster import Cluster, SafetyViolation
from tests.consensus.network import Faults

LIVENESS_TICKS = 800
CHAOS_TICKS = 150


@dataclass(frozen=True)
class RunResult:
    seed: int
    n: int
    byzantine: int
    heights: dict[str, int]
    messages: int


def random_run(
    seed: int,
    *,
    sizes: tuple[int, ...] = (4, 4, 4, 7, 10),
    chaos_ticks: int = CHAOS_TICKS,
    real_ledger: bool = False,
) -> RunResult:
    """One run; a failure says how to replay it exactly."""
    try:
        return _run(seed, sizes=sizes, chaos_ticks=chaos_ticks, real_ledger=real_ledger)
    except SafetyViolation as exc:
        replay = f"python -m tests.consensus.soak --seed {seed} --sizes {','.join(map(str, sizes))}"
        if real_ledger:
            replay += " --real-ledger"
        raise SafetyViolation(f"{exc} (replay: {replay})") from exc


def _run(
    seed: int,
    *,
    sizes: tuple[int, ...] = (4, 4, 4, 7, 10),
    chaos_ticks: int = CHAOS_TICKS,
    real_ledger: bool = False,
) -> RunResult:
    rng = random.Random(seed)
    n = rng.choice(sizes)
    f = max_faulty(n)
    byzantine = {i: Chaos(rng.getrandbits(32)) for i in rng.sample(range(n), rng.randint(0, f))}
    faults = Faults(
        drop=rng.choice((0.0, 0.05, 0.2)),
        duplicate=rng.choice((0.0, 0.1)),
        min_delay=1,
        max_delay=rng.choice((1, 3, 8)),
    )
    cluster = Cluster(n, seed=seed, faults=faults, byzantine=byzantine, real_ledger=real_ledger)
    cluster.fund_banks()
    names = sorted(cluster.nodes)
    honest = [name for name in names if cluster.nodes[name].honest]
    for _ in range(chaos_ticks):
        roll = rng.random()
        if roll < 0.02:
            cut = rng.randint(1, n - 1)
            shuffled = rng.sample(names, n)
            cluster.partition(shuffled[:cut], shuffled[cut:])
        elif roll < 0.04:
            cluster.heal()
        elif roll < 0.055:
            cluster.crash(rng.choice(honest))
        elif roll < 0.075:
            dead = [name for name in honest if not cluster.nodes[name].alive]
            if dead:
                cluster.restart(rng.choice(dead))
        elif roll < 0.2:
            cluster.submit(rng.randint(1, 3))
        cluster.step()
    cluster.heal()
    cluster.network.faults = Faults(max_delay=2)
    for name in honest:
        if not cluster.nodes[name].alive:
            cluster.restart(name)
    target = max(cluster.heights()[name] for name in honest) + 2
    cluster.submit(2)
    if not cluster.run_until(lambda: cluster.min_honest_height() >= target, LIVENESS_TICKS):
        raise SafetyViolation(
            f"seed={seed}: no liveness after healing: heights {cluster.heights()}, wanted {target} "
            f"within {LIVENESS_TICKS} ticks"
        )
    return RunResult(seed, n, len(byzantine), cluster.heights(), cluster.network.sent)
