"""Conversions between State values and the rows and JSON a store keeps (no SQL here).

Columns are in the order of the statements in ``ledger.store.sqlite``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from ledger import statehash
from ledger.day import BankDay, DaySummary, DayTotals, SenderLimits
from ledger.genesis import Parameters
from ledger.keys import PublicKey
from ledger.roles import Role
from ledger.state import (
    URGENT,
    Participant,
    PayerQueue,
    QueuedTransfer,
    ReplayBucket,
    State,
    replay_group_element,
)
from ledger.store.base import INDEX_BITS


class StoredTransaction(NamedTuple):
    """A transaction row: the signed bytes, the id stored beside them, the receipt.

    A named tuple, not a frozen dataclass: an audit builds one per transaction of the
    chain, and this is a third of the cost (about 0.5 against 1.5 µs)."""

    body: bytes
    signature: bytes
    id: bytes
    outcome: int
    reason: str | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class StoredBlock:
    """A block's rows, undecoded: ``seals`` is a serialised ``Block`` holding only seals."""

    height: int
    hash: bytes
    header: bytes
    seals: bytes
    transactions: tuple[StoredTransaction, ...]
    settlements: tuple[tuple[bytes, int, bool, str], ...]


@dataclass(frozen=True, slots=True)
class StoredState:
    """The head state as stored: the ``state`` meta value, account rows, queue rows."""

    meta: Mapping[str, Any]
    accounts: tuple[Mapping[str, Any], ...]
    queue: tuple[Mapping[str, Any], ...]


def account_row(state: State, account: str) -> tuple:
    p = state.participants[account]
    day = state.days.get(p.id)
    return (
        p.id,
        p.role,
        p.key.to_text(),
        p.name,
        int(p.suspended),
        state.balances.get(p.id, 0),
        json.dumps(_day_json(day)) if day is not None else None,
    )


def _day_json(day: BankDay) -> dict[str, Any]:
    return {
        "multilateral": day.limits.multilateral,
        "bilateral": dict(day.limits.bilateral),
        "positions": dict(day.positions),
        "totals": list(day.totals.encode()),
    }


def _day(data: Mapping[str, Any]) -> BankDay:
    return BankDay(
        SenderLimits(data["multilateral"], data["bilateral"]),
        data["positions"],
        DayTotals(*data["totals"]),
    )


def _summary_json(summary: DaySummary | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {
        "day": summary.day,
        "banks": {bank: list(t.encode()) for bank, t in summary.banks.items()},
    }


def _summary(data: Mapping[str, Any] | None) -> DaySummary | None:
    if data is None:
        return None
    return DaySummary(data["day"], {b: DayTotals(*t) for b, t in data["banks"].items()})


def queue_row(e: QueuedTransfer) -> tuple:
    return (
        e.seq,
        e.transfer_id,
        e.payer,
        e.payee,
        e.amount,
        e.priority,
        e.queued_height,
        int(e.held),
    )


def state_meta(state: State) -> dict[str, Any]:
    """The small scalar part of a State, kept as one JSON value."""
    return {
        "chain_id": state.chain_id,
        "height": state.height,
        "head_hash": state.head_hash.hex(),
        "timestamp_ms": state.timestamp_ms,
        "parameters": state.parameters.to_dict(),
        "issued": state.issued,
        "redeemed": state.redeemed,
        "next_seq": state.next_seq,
        "validators": _key_texts(state.validators),
        "pending": [[h, _key_texts(v)] for h, v in state.pending_validators],
        "day": state.day,
        "last_day": _summary_json(state.last_day),
    }


def parameters(meta: Mapping[str, Any]) -> Parameters:
    return Parameters(**meta["parameters"])


def state_from_rows(
    meta: Mapping[str, Any],
    accounts: Iterable[Mapping[str, Any]],
    queued: Iterable[Mapping[str, Any]],
    replay_ids: Iterable[tuple[int, int, bytes]],
) -> State:
    """Rebuild a State; ``queued`` must come in seq order, which is queue order per class."""
    participants: dict[str, Participant] = {}
    balances: dict[str, int] = {}
    days: dict[str, BankDay] = {}
    for row in accounts:
        if row.get("day"):
            days[row["id"]] = _day(json.loads(row["day"]))
        participants[row["id"]] = Participant(
            row["id"],
            Role(row["role"]),
            PublicKey.from_text(row["key"]),
            row["name"],
            bool(row["suspended"]),
        )
        if row["role"] == Role.BANK:
            balances[row["id"]] = row["balance"]
    queues: dict[str, tuple[dict, dict]] = {}
    for row in queued:
        entry = QueuedTransfer(
            row["transfer_id"],
            row["payer"],
            row["payee"],
            row["amount"],
            row["priority"],
            row["seq"],
            row["queued_height"],
            bool(row["held"]),
        )
        urgent, normal = queues.setdefault(entry.payer, ({}, {}))
        (urgent if entry.priority == URGENT else normal)[entry.transfer_id] = entry
    state = State(
        chain_id=meta["chain_id"],
        height=meta["height"],
        head_hash=bytes.fromhex(meta["head_hash"]),
        timestamp_ms=meta["timestamp_ms"],
        parameters=parameters(meta),
        participants=participants,
        balances=balances,
        queues={payer: PayerQueue(u, n) for payer, (u, n) in queues.items()},
        issued=meta["issued"],
        redeemed=meta["redeemed"],
        next_seq=meta["next_seq"],
        validators=_keys(meta["validators"]),
        pending_validators=tuple((h, _keys(v)) for h, v in meta["pending"]),
        replay=_replay_buckets(replay_ids),
        accumulator=0,
        day=meta["day"],
        days=days,
        last_day=_summary(meta["last_day"]),
    )
    accumulator = state.recomputed_accumulator(replay_from_bucket_sums=True)
    return dataclasses.replace(state, accumulator=accumulator)


def _replay_buckets(replay_ids: Iterable[tuple[int, int, bytes]]) -> dict[int, ReplayBucket]:
    """Buckets from ``(key, valid_until, id)`` rows in key order: each block's ids of one
    bucket make one group, as ``WorkingState`` added them."""
    groups: dict[int, dict[int, list[bytes]]] = {}
    for key, valid_until, transaction_id in replay_ids:
        groups.setdefault(valid_until, {}).setdefault(key >> INDEX_BITS, []).append(
            transaction_id
        )
    replay = {}
    for valid_until, by_height in groups.items():
        hash_sum = 0
        for ids in by_height.values():
            hash_sum = statehash.add(hash_sum, replay_group_element(ids, valid_until))
        replay[valid_until] = ReplayBucket(
            frozenset(i for ids in by_height.values() for i in ids),
            hash_sum,
            tuple(tuple(ids) for ids in by_height.values()),
        )
    return replay


def _keys(validators: Mapping[str, str]) -> dict[str, PublicKey]:
    return {validator: PublicKey.from_text(text) for validator, text in validators.items()}


def _key_texts(validators: Mapping[str, PublicKey]) -> dict[str, str]:
    return {validator: key.to_text() for validator, key in validators.items()}
