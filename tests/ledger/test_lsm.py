"""The liquidity-saving mechanism's choice, checked against brute force (Hypothesis).

On small random instances (balances, queues of both priorities, bilateral and
multilateral limits, positions already taken today):

* the chosen prefixes are feasible: no balance negative, no limit exceeded;
* they are the largest feasible choice: every feasible choice found by brute force is
  contained in it, so its value equals the brute-force optimum exactly;
* renaming the banks (so they sort in another order) and shuffling the input order
  gives the same choice.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from clients.bench.lsm_reference import best_prefixes, best_subset_value, feasible, value
from ledger.day import SenderLimits
from ledger.lsm import largest_offsetting_set
from ledger.state import NORMAL, URGENT, QueuedTransfer


@st.composite
def instances(draw, *, with_limits: bool = True):
    banks = [f"bank-{i}" for i in range(draw(st.integers(2, 4)))]
    balances = {bank: draw(st.integers(0, 60)) for bank in banks}
    eligible: dict[str, list[QueuedTransfer]] = {}
    seq = 0
    for payer in banks:
        entries = []
        for _ in range(draw(st.integers(0, 3))):
            payee = draw(st.sampled_from([b for b in banks if b != payer]))
            priority = draw(st.sampled_from([URGENT, NORMAL, NORMAL]))
            amount = draw(st.integers(1, 80))
            entries.append(QueuedTransfer(bytes([seq]), payer, payee, amount, priority, seq, 1))
            seq += 1
        entries.sort(key=lambda e: e.priority != URGENT)  # urgent first, stable
        if entries:
            eligible[payer] = entries
    limits: dict[str, SenderLimits] = {}
    positions: dict[tuple[str, str], int] = {}
    if with_limits:
        for bank in banks:
            if draw(st.booleans()):
                multilateral = draw(st.none() | st.integers(0, 80))
                bilateral = {
                    q: draw(st.integers(0, 80))
                    for q in banks
                    if q != bank and draw(st.integers(0, 3)) == 0
                }
                limits[bank] = SenderLimits(multilateral, bilateral)
            for q in banks:
                if q != bank and draw(st.integers(0, 2)) == 0:
                    positions[(bank, q)] = draw(st.integers(-40, 40))
    return balances, eligible, limits, positions


def chosen(eligible, lengths):
    return [e for p, n in lengths.items() for e in eligible[p][:n]]


@settings(max_examples=400, deadline=None)
@given(instances())
def test_the_choice_is_feasible_and_contains_every_feasible_choice(instance):
    balances, eligible, limits, positions = instance
    lengths = largest_offsetting_set(balances, eligible, limits, positions)
    assert set(lengths) == set(eligible)
    assert feasible(balances, chosen(eligible, lengths), limits, positions), lengths
    every = best_prefixes(balances, eligible, limits, positions)
    for other in every:
        assert all(other[p] <= lengths[p] for p in eligible), (other, lengths)
    assert value(eligible, lengths) == max(value(eligible, o) for o in every)


@settings(max_examples=200, deadline=None)
@given(instances(), st.randoms(use_true_random=False))
def test_the_choice_does_not_depend_on_which_bank_goes_first(instance, random):
    balances, eligible, limits, positions = instance
    lengths = largest_offsetting_set(balances, eligible, limits, positions)
    names = list(balances)
    shuffled = names[:]
    random.shuffle(shuffled)
    # Renamed banks sort in another order; dicts are also built in another order.
    rename = {old: f"x-{new}" for old, new in zip(names, reversed(shuffled), strict=True)}
    back = {new: old for old, new in rename.items()}

    def moved(entry: QueuedTransfer) -> QueuedTransfer:
        return QueuedTransfer(
            entry.transfer_id,
            rename[entry.payer],
            rename[entry.payee],
            entry.amount,
            entry.priority,
            entry.seq,
            entry.queued_height,
        )

    payers = list(eligible)
    random.shuffle(payers)
    renamed = largest_offsetting_set(
        {rename[b]: balances[b] for b in shuffled},
        {rename[p]: [moved(e) for e in eligible[p]] for p in payers},
        {
            rename[b]: SenderLimits(
                lim.multilateral, {rename[q]: v for q, v in lim.bilateral.items()}
            )
            for b, lim in limits.items()
        },
        {(rename[p], rename[q]): v for (p, q), v in positions.items()},
    )
    assert {back[p]: n for p, n in renamed.items()} == lengths


def entry(payer: str, payee: str, amount: int, seq: int, priority: int = NORMAL) -> QueuedTransfer:
    return QueuedTransfer(bytes([seq]), payer, payee, amount, priority, seq, 1)


def test_a_long_chain_of_drops_never_shrinks_a_queue_below_empty():
    # A pays B everything it has queued; B can cover none of its own queue: every entry
    # of A must be dropped one by one, and B's (which A's money never reaches) too.
    eligible = {
        "a": [entry("a", "b", 10, i) for i in range(50)],
        "b": [entry("b", "c", 1000, 100)],
    }
    lengths = largest_offsetting_set({"a": 25, "b": 0, "c": 0}, eligible)
    assert lengths == {"a": 2, "b": 0}


def test_a_limit_binds_normal_transfers_only():
    eligible = {"a": [entry("a", "b", 50, 1, URGENT), entry("a", "b", 50, 2)]}
    limits = {"a": SenderLimits(multilateral=None, bilateral={"b": 40})}
    assert largest_offsetting_set({"a": 100, "b": 0}, eligible, limits) == {"a": 1}
    # What A received from B today counts for it: the position is 50 - 20 = 30 <= 40.
    assert largest_offsetting_set({"a": 100, "b": 0}, eligible, limits, {("a", "b"): -20}) == {
        "a": 2
    }


@settings(max_examples=150, deadline=None)
@given(instances(with_limits=False))
def test_order_can_only_cost_the_unordered_optimum_bounds_the_fifo_one(instance):
    balances, eligible, _, _ = instance
    lengths = largest_offsetting_set(balances, eligible)
    entries = [e for es in eligible.values() for e in es]
    assert best_subset_value(balances, entries) >= value(eligible, lengths)


def test_the_price_of_order_on_the_textbook_case():
    # A's big payment to C heads its queue; without order A->B and B->A would offset.
    eligible = {
        "a": [entry("a", "c", 500, 1), entry("a", "b", 100, 2)],
        "b": [entry("b", "a", 100, 3)],
    }
    balances = {"a": 0, "b": 0, "c": 0}
    assert largest_offsetting_set(balances, eligible) == {"a": 0, "b": 0}
    assert best_subset_value(balances, [e for es in eligible.values() for e in es]) == 200
