"""Benchmark: the liquidity-saving mechanism, its speed, its quality and what it saves.

1. Speed on one core: one run over 10,000 and 100,000 queued transfers among 50 banks,
   both the choice alone (``largest_offsetting_set``) and a whole block that carries one
   payment and so runs the mechanism (eligible queues, the choice, settling what it
   chose, the state hash). Targets: <= 20 ms and <= 200 ms, so block production never
   stalls. Medians of a few runs, in CPU time of the process (the run is one thread).
2. Quality on 1,000 random small instances: the value the mechanism settles divided by
   the best feasible choice of queue prefixes found by brute force (must be exactly 1),
   and the price of order: that optimum divided by the best subset of the queued
   transfers ignoring queue order (brute force too).
3. Liquidity saved: a simulated day of 100,000 payments among 50 banks, sizes and
   counterparties skewed, four in five answered later by a payment back, arriving in
   blocks of 1,000. A bank's ``upper`` bound is the largest net debit it reaches during
   the day (what it needs to pay every payment on arrival), its ``lower`` bound its net
   debit at the close (what it needs when everything can be netted). Each bank opens
   with ``level x upper`` for a few levels, and with and without the mechanism the
   section reports the mean delay (in blocks; a payment unsettled at the close counts as
   delayed until then) and what is still unsettled at the close. Then the opening
   liquidity each needs to settle everything by the close, searched (by bisection) on
   ``lower + level x (upper - lower)``. Table, and a chart in ``bench/lsm-liquidity.png``.

``python -m clients.bench.lsm``; also the ``lsm`` section of ``make bench``.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from straits.ledger.v1 import transaction_pb2 as tx_pb

from clients.bench.lsm_reference import best_prefixes, best_subset_value, value
from ledger.execute import AlreadyVerified, execute
from ledger.genesis import Genesis
from ledger.keys import PrivateKey
from ledger.lsm import largest_offsetting_set
from ledger.state import NORMAL, URGENT, PayerQueue, QueuedTransfer, State
from ledger.transaction import Transaction, sign

BANKS = tuple(f"bank-{i:02d}" for i in range(50))
CHART = Path("bench/lsm-liquidity.png")
CHAIN_ID = "straits-bench-lsm"
LEVELS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
BLOCK = 1_000
SEED = 20_260_101


# --- instances ---------------------------------------------------------------------------


def _weights(rng: random.Random, count: int) -> list[float]:
    # Zipf-like: a few big banks send and receive most payments.
    order = list(range(count))
    rng.shuffle(order)
    return [1.0 / (1 + rank) ** 0.9 for rank in order]


def payments(rng: random.Random, count: int, banks: Sequence[str]) -> list[tuple[str, str, int]]:
    weights = _weights(rng, len(banks))
    out = []
    while len(out) < count:
        payer, payee = rng.choices(banks, weights, k=2)
        if payer != payee:
            # Lognormal sizes: most small, a heavy tail of large ones (minor units).
            out.append((payer, payee, max(1, int(rng.lognormvariate(11, 1.6)))))
    return out


def day_of_payments(rng: random.Random, count: int) -> list[tuple[str, str, int]]:
    """A day whose flows mostly balance, as between banks they do: four in five payments
    are answered later in the day by one of the same amount the other way."""
    originals = payments(rng, round(count / 1.8), BANKS)
    timed: list[tuple[float, tuple[str, str, int]]] = []
    for payer, payee, amount in originals:
        sent = rng.random()
        timed.append((sent, (payer, payee, amount)))
        if rng.random() < 0.8:
            timed.append((rng.uniform(sent, 1.0), (payee, payer, amount)))
    timed.sort()
    return [payment for _, payment in timed[:count]]


def queued(
    rng: random.Random, count: int
) -> tuple[dict[str, int], dict[str, list[QueuedTransfer]]]:
    """``count`` queued transfers among 50 banks, in gridlock: each bank holds 5 % of what
    it owes but never enough for the first transfer of its queue, so the ordinary queue
    pass can settle nothing and all the work is the mechanism's."""
    eligible: dict[str, list[QueuedTransfer]] = {}
    for seq, (payer, payee, amount) in enumerate(payments(rng, count, BANKS)):
        priority = URGENT if seq % 10 == 0 else NORMAL
        entry = QueuedTransfer(seq.to_bytes(32, "big"), payer, payee, amount, priority, seq, 1)
        eligible.setdefault(payer, []).append(entry)
    for payer in eligible:
        eligible[payer].sort(key=lambda e: (e.priority, e.seq))
    owed = {bank: sum(e.amount for e in eligible.get(bank, ())) for bank in BANKS}
    return {
        bank: min(owed[bank] // 20, eligible[bank][0].amount - 1 if bank in eligible else 0)
        for bank in BANKS
    }, eligible


# --- 1. speed ----------------------------------------------------------------------------


def _genesis() -> tuple[Genesis, PrivateKey]:
    central_bank = PrivateKey.from_seed(b"\x01" * 32)
    participants = [
        {
            "id": "central-bank",
            "role": "central_bank",
            "name": "CB",
            "key": central_bank.public_key.to_text(),
        }
    ]
    participants += [
        {
            "id": b,
            "role": "bank",
            "name": b,
            "key": PrivateKey.from_seed(bytes([2]) * 32).public_key.to_text(),
        }
        for b in BANKS
    ]
    genesis = Genesis.from_dict(
        {
            "chain_id": CHAIN_ID,
            "currency": {"code": "SGD", "decimals": 2},
            "genesis_time_ms": 0,
            "participants": participants,
            "validators": [{"id": "v", "key": central_bank.public_key.to_text()}],
        }
    )
    return genesis, central_bank


def _state_with(balances: dict[str, int], eligible: dict[str, list[QueuedTransfer]]) -> State:
    genesis, _ = _genesis()
    state = State.genesis(genesis)
    queues = {
        payer: PayerQueue(
            {e.transfer_id: e for e in entries if e.priority == URGENT},
            {e.transfer_id: e for e in entries if e.priority == NORMAL},
        )
        for payer, entries in eligible.items()
    }
    total = sum(balances.values())
    state = dataclasses.replace(
        state, balances=balances, queues=queues, issued=total, next_seq=1 << 40
    )
    return dataclasses.replace(state, accumulator=state.recomputed_accumulator())


def _median_ms(action: Callable[[], object], repeat: int) -> float:
    """Median CPU time of the process: the machine may be shared, and one run is one core."""
    times = []
    for _ in range(repeat):
        started = time.process_time()
        action()
        times.append((time.process_time() - started) * 1000)
    return statistics.median(times)


def _run_block(state: State, block: list[Transaction]) -> None:
    execute(state, block, verify=AlreadyVerified(), strict=True).state.root()


def speed() -> tuple[list[dict], dict]:
    rows, figures = [], {}
    genesis, central_bank = _genesis()
    for count, target, repeat in ((10_000, "<= 20", 7), (100_000, "<= 200", 3)):
        balances, eligible = queued(random.Random(SEED + count), count)
        choice_ms = _median_ms(partial(largest_offsetting_set, balances, eligible), repeat)
        chosen = largest_offsetting_set(balances, eligible)
        released = sum(chosen.values())
        state = _state_with(balances, eligible)
        body = tx_pb.TransactionBody(
            signer="central-bank",
            valid_until_height=10,
            nonce=1,
            issue=tx_pb.Issue(bank=BANKS[0], amount=1),
        )
        block = [sign(genesis.chain_id, central_bank, body)]
        block_ms = _median_ms(partial(_run_block, state, block), repeat)
        figures[str(count)] = {
            "choice_ms": choice_ms,
            "block_ms": block_ms,
            "released": released,
            "released_value": value(eligible, chosen),
        }
        rows += [
            {
                "metric": f"choice over {count:,} queued (50 banks)",
                "value": choice_ms,
                "unit": "ms",
                "target": f"{target} ms",
            },
            {
                "metric": f"block running it, {count:,} queued, {released:,} released",
                "value": block_ms,
                "unit": "ms",
                "target": "",
            },
        ]
    return rows, figures


# --- 2. quality ----------------------------------------------------------------------------


def small_instance(rng: random.Random) -> tuple[dict[str, int], dict[str, list[QueuedTransfer]]]:
    banks = [f"b{i}" for i in range(rng.randint(2, 4))]
    balances = {bank: rng.randint(0, 50) for bank in banks}
    eligible: dict[str, list[QueuedTransfer]] = {}
    seq = 0
    for payer in banks:
        for _ in range(rng.randint(0, 3 if len(banks) < 4 else 2)):
            payee = rng.choice([b for b in banks if b != payer])
            entry = QueuedTransfer(bytes([seq]), payer, payee, rng.randint(1, 80), NORMAL, seq, 1)
            eligible.setdefault(payer, []).append(entry)
            seq += 1
    return balances, eligible


def quality(count: int = 1_000) -> tuple[list[dict], dict]:
    rng = random.Random(SEED)
    ratios, prices = [], []
    for _ in range(count):
        balances, eligible = small_instance(rng)
        settled = value(eligible, largest_offsetting_set(balances, eligible))
        fifo = max(value(eligible, c) for c in best_prefixes(balances, eligible))
        free = best_subset_value(balances, [e for es in eligible.values() for e in es])
        ratios.append(1.0 if fifo == 0 else settled / fifo)
        if free:
            prices.append(fifo / free)
    exact = sum(r == 1.0 for r in ratios)
    figures = {
        "instances": count,
        "min_ratio": min(ratios),
        "exactly_optimal": exact,
        "price_of_order_mean": statistics.fmean(prices),
        "price_of_order_min": min(prices),
        "instances_where_order_costs": sum(p < 1 for p in prices),
    }
    rows = [
        {
            "metric": f"settled / FIFO optimum, worst of {count:,}",
            "value": min(ratios),
            "unit": "ratio",
            "target": "= 1.000",
        },
        {
            "metric": "price of order: FIFO / unordered optimum, mean",
            "value": figures["price_of_order_mean"],
            "unit": "ratio",
            "target": "",
        },
        {
            "metric": "price of order: worst instance",
            "value": figures["price_of_order_min"],
            "unit": "ratio",
            "target": "",
        },
    ]
    return rows, figures


# --- 3. liquidity saved: a simulated day ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DayOutcome:
    mean_delay_blocks: float  # unsettled payments count as delayed until the close
    unsettled: int
    unsettled_value: int
    by_offsetting: int


def liquidity_bounds(day: Sequence[tuple[str, str, int]]) -> tuple[dict[str, int], dict[str, int]]:
    """Per bank: net debit at the close (lower) and the largest net debit during the day."""
    net = dict.fromkeys(BANKS, 0)
    peak = dict.fromkeys(BANKS, 0)
    for payer, payee, amount in day:
        net[payer] -= amount
        net[payee] += amount
        peak[payer] = max(peak[payer], -net[payer])
    return {b: max(0, -net[b]) for b in BANKS}, peak


def simulate(
    day: Sequence[tuple[str, str, int]], opening: dict[str, int], *, mechanism: bool
) -> DayOutcome:
    """The ledger's queue rules over a day, block by block: a payment settles on arrival
    if its payer covers it and nothing waits ahead of it; the end-of-block pass walks
    each payer's queue in order; then, with ``mechanism``, the liquidity-saving run."""
    balances = dict(opening)
    queues: dict[str, deque[QueuedTransfer]] = {b: deque() for b in BANKS}
    arrival: dict[int, int] = {}
    delay_total = offset = 0

    def settle(entry: QueuedTransfer, block: int) -> None:
        nonlocal delay_total
        balances[entry.payer] -= entry.amount
        balances[entry.payee] += entry.amount
        delay_total += block - arrival.pop(entry.seq)

    blocks = (len(day) + BLOCK - 1) // BLOCK
    for block in range(blocks):
        dirty: set[str] = set()
        for seq in range(block * BLOCK, min((block + 1) * BLOCK, len(day))):
            payer, payee, amount = day[seq]
            if not queues[payer] and balances[payer] >= amount:
                balances[payer] -= amount
                balances[payee] += amount
                dirty.add(payee)
                continue
            arrival[seq] = block
            queues[payer].append(QueuedTransfer(b"", payer, payee, amount, NORMAL, seq, block))
            dirty.add(payer)
        while dirty:
            payers, dirty = sorted(dirty), set()
            for payer in payers:
                queue = queues[payer]
                while queue and queue[0].amount <= balances[payer]:
                    entry = queue.popleft()
                    settle(entry, block)
                    dirty.add(entry.payee)
        if mechanism:
            eligible = {p: list(q) for p, q in queues.items() if q}
            if eligible:
                counts = largest_offsetting_set(balances, eligible)
                for payer, count in counts.items():
                    for _ in range(count):
                        settle(queues[payer].popleft(), block)
                        offset += 1
    left = [e for q in queues.values() for e in q]
    delay_total += sum(blocks - e.queued_height for e in left)
    return DayOutcome(delay_total / len(day), len(left), sum(e.amount for e in left), offset)


def _opening(lower: dict[str, int], upper: dict[str, int], level: float) -> dict[str, int]:
    return {b: lower[b] + int(level * (upper[b] - lower[b])) for b in BANKS}


def liquidity(count: int = 100_000) -> tuple[list[dict], dict]:
    day = day_of_payments(random.Random(SEED + 1), count)
    lower, upper = liquidity_bounds(day)
    total_upper = sum(upper.values())
    curve = []
    for level in LEVELS:
        opening = {b: int(level * upper[b]) for b in BANKS}
        entry = {"level": level, "opening": sum(opening.values())}
        for name, mechanism in (("with", True), ("without", False)):
            print(f"  day at level {level} {name} the mechanism", file=sys.stderr, flush=True)
            entry[name] = dataclasses.asdict(simulate(day, opening, mechanism=mechanism))
        curve.append(entry)
    # The least level at which the day clears by the close without the mechanism.
    low, high = 0.0, 1.0
    for _ in range(10):
        middle = (low + high) / 2
        if simulate(day, _opening(lower, upper, middle), mechanism=False).unsettled:
            low = middle
        else:
            high = middle
    needed_without = sum(_opening(lower, upper, high).values())
    needed_with = sum(lower.values())
    assert simulate(day, lower, mechanism=True).unsettled == 0
    figures = {
        "payments": count,
        "banks": len(BANKS),
        "block": BLOCK,
        "lower_bound_total": needed_with,
        "upper_bound_total": total_upper,
        "needed_with": needed_with,
        "needed_without": needed_without,
        "saved_fraction": 1 - needed_with / needed_without,
        "curve": curve,
        "chart": str(CHART),
    }
    chart(curve, total_upper)
    rows = [
        {
            "metric": "opening liquidity to clear the day, without / with",
            "value": needed_without / needed_with,
            "unit": "ratio",
            "target": "",
        },
        {
            "metric": "liquidity saved by the mechanism",
            "value": 100 * figures["saved_fraction"],
            "unit": "%",
            "target": "",
        },
    ]
    for entry in curve:
        with_, without = entry["with"], entry["without"]
        rows.append(
            {
                "metric": f"opening {entry['level']:.0%} of upper: delay, unsettled count,"
                " with / without",
                "value": f"{with_['mean_delay_blocks']:.2f} / {without['mean_delay_blocks']:.2f}"
                f" blocks, {with_['unsettled']:,} / {without['unsettled']:,}",
                "unit": "",
                "target": "",
            }
        )
    return rows, figures


def chart(curve: list[dict], upper_total: int) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    from matplotlib import pyplot as plt

    x = [100 * entry["opening"] / upper_total for entry in curve]
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for name, style in (("with", "o-"), ("without", "s--")):
        y = [entry[name]["mean_delay_blocks"] for entry in curve]
        axis.plot(x, y, style, label=f"{name} the liquidity-saving mechanism")
    axis.set_xlabel("opening liquidity, % of what settles every payment on arrival")
    axis.set_ylabel("mean delay, blocks of 1,000 payments\n(unsettled: until the close)")
    axis.set_title("A simulated day: 100,000 payments among 50 banks")
    axis.grid(alpha=0.3)
    axis.legend()
    CHART.parent.mkdir(exist_ok=True)
    figure.tight_layout()
    figure.savefig(CHART, dpi=120)
    plt.close(figure)


def run() -> dict:
    rows: list[dict] = []
    result: dict[str, object] = {}
    for name, section in (("speed", speed), ("quality", quality), ("liquidity", liquidity)):
        print(f"  lsm {name}...", file=sys.stderr, flush=True)
        section_rows, figures = section()
        rows += section_rows
        result[name] = figures
    result["rows"] = rows
    return result


if __name__ == "__main__":
    from clients.bench import core

    core.main({"lsm": run}, Path("bench/lsm.json"), "python -m clients.bench.lsm")
