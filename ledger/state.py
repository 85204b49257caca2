"""The ledger state as a value: accounts, queues, supply, validators, replay window.

``State`` is never mutated. Executing a block (``ledger.execute``) copies what the
block touches (the balance map, the queues of the payers it touches, the replay buckets
it adds to) and returns a new ``State``; everything untouched is shared with the old
one. The mappings held here are plain dicts that nobody writes after construction.

The state root (``root()``) covers every field that decides what a later block does:
chain, height, supply totals, the arrival counter, the settlement day and the summary of
the last one closed, validators and pending changes, parameters, and, through the
incremental multiset hash of ``ledger.statehash``, every account, every bank's limits and
day figures, every queued transfer and remembered transaction id. The head block's hash and
timestamp are not in it: the block that carries a state root cannot hash itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from straits.ledger.v1 import transaction_pb2 as tx_pb

from ledger import statehash
from ledger.day import BankDay, DaySummary
from ledger.errors import StraitsError, expected
from ledger.genesis import Genesis, Parameters
from ledger.keys import PublicKey
from ledger.roles import Role

URGENT = tx_pb.PRIORITY_URGENT
NORMAL = tx_pb.PRIORITY_NORMAL
_ROOT_TAG = b"straits/state/v1"


@dataclass(frozen=True, slots=True)
class Participant:
    id: str
    role: Role
    key: PublicKey
    name: str
    suspended: bool = False

    def element(self, balance: int) -> int:
        return statehash.element(
            statehash.encode(
                b"account",
                self.id,
                self.role,
                self.key.to_text(),
                self.name,
                self.suspended,
                balance,
            )
        )


@dataclass(frozen=True, slots=True)
class QueuedTransfer:
    """A transfer waiting in its payer's queue. ``seq`` orders arrival across the chain."""

    transfer_id: bytes
    payer: str
    payee: str
    amount: int
    priority: int
    seq: int
    queued_height: int
    held: bool = False

    def element(self) -> int:
        return statehash.element(
            statehash.encode(
                b"queued",
                self.transfer_id,
                self.payer,
                self.payee,
                self.amount,
                self.priority,
                self.seq,
                self.queued_height,
                self.held,
            )
        )


@dataclass(frozen=True, slots=True)
class PayerQueue:
    """One payer's queue: URGENT entries, then NORMAL ones, each dict in arrival order."""

    urgent: Mapping[bytes, QueuedTransfer] = field(default_factory=dict)
    normal: Mapping[bytes, QueuedTransfer] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.urgent) + len(self.normal)

    def __iter__(self) -> Iterator[QueuedTransfer]:
        yield from self.urgent.values()
        yield from self.normal.values()

    def get(self, transfer_id: bytes) -> QueuedTransfer | None:
        return self.urgent.get(transfer_id) or self.normal.get(transfer_id)


@dataclass(frozen=True, slots=True)
class ReplayBucket:
    """Ids of the applied transactions whose ``valid_until_height`` is this bucket's height.

    ``groups`` holds them as the blocks added them: per block, its ids in block order.
    The state hash holds one element per group (``replay_group_element``), not one per
    id, and ``hash_sum`` is the sum of the bucket's, so a bucket that expires leaves the
    state hash in one subtraction.
    """

    ids: frozenset[bytes]
    hash_sum: int
    groups: tuple[tuple[bytes, ...], ...]


_REPLAY_GROUP = b"replay-group"


def replay_group_element(ids: Sequence[bytes], valid_until_height: int) -> int:
    """The state-hash element of the ids one block added to the bucket of
    ``valid_until_height``: ``encode(b"replay-group", valid_until_height, count,
    sha256(the ids joined in block order))``.

    One 512-byte SHAKE128 per block and bucket instead of one per transaction (about
    2.5 µs a transaction, measured); the SHA-256 of the joined ids costs about 0.1 µs
    an id. An id is consumed once while remembered, so no two groups of a bucket share
    one, and the multiset of groups is fixed by the chain.
    """
    digest = hashlib.sha256(b"".join(ids)).digest()
    return statehash.element(
        statehash.encode(_REPLAY_GROUP, valid_until_height, len(ids), digest)
    )


@dataclass(frozen=True, slots=True)
class Position:
    """What a bank holds and what waits: queued amounts stay in the payer's balance."""

    bank: str
    balance: int
    queued_outgoing: int
    queued_outgoing_count: int
    queued_incoming: int
    queued_incoming_count: int

    @property
    def net(self) -> int:
        return self.balance - self.queued_outgoing + self.queued_incoming


@dataclass(frozen=True, slots=True)
class State:
    chain_id: str
    height: int
    head_hash: bytes
    timestamp_ms: int
    parameters: Parameters
    participants: Mapping[str, Participant]
    balances: Mapping[str, int]
    queues: Mapping[str, PayerQueue]
    issued: int
    redeemed: int
    next_seq: int
    validators: Mapping[str, PublicKey]
    pending_validators: tuple[tuple[int, Mapping[str, PublicKey]], ...]
    replay: Mapping[int, ReplayBucket]
    accumulator: int
    # The settlement day: its number, each bank's limits and figures for it (banks with
    # neither left out), and the summary of the last day closed.
    day: int = 1
    days: Mapping[str, BankDay] = field(default_factory=dict)
    last_day: DaySummary | None = None

    @classmethod
    def genesis(cls, genesis: Genesis) -> State:
        participants = {
            p.id: Participant(p.id, p.role, p.key, p.name) for p in genesis.participants
        }
        balances = {p.id: 0 for p in participants.values() if p.role == Role.BANK}
        accumulator = 0
        for p in participants.values():
            accumulator = statehash.add(accumulator, p.element(balances.get(p.id, 0)))
        return cls(
            chain_id=genesis.chain_id,
            height=0,
            head_hash=genesis.hash,
            timestamp_ms=genesis.genesis_time_ms,
            parameters=genesis.parameters,
            participants=participants,
            balances=balances,
            queues={},
            issued=0,
            redeemed=0,
            next_seq=0,
            validators={v.id: v.key for v in genesis.validators},
            pending_validators=(),
            replay={},
            accumulator=accumulator,
        )

    @property
    def supply(self) -> int:
        return self.issued - self.redeemed

    def root(self) -> bytes:
        h = hashlib.sha256(_ROOT_TAG)
        h.update(
            statehash.encode(
                b"head",
                self.chain_id,
                self.height,
                self.issued,
                self.redeemed,
                self.next_seq,
                self.day,
                *(getattr(self.parameters, name) for name in self.parameters.__slots__),
            )
        )
        h.update(_validator_set_encoding(0, self.validators))
        for effective_height, validators in self.pending_validators:
            h.update(_validator_set_encoding(effective_height, validators))
        h.update(statehash.digest(self.accumulator))
        if self.last_day is not None:
            h.update(self.last_day.encoding())
        return h.digest()

    def validators_for(self, height: int) -> Mapping[str, PublicKey]:
        """The validator set of ``height``, from the head on (older sets live in the store)."""
        if height < self.height:
            raise StraitsError(
                expected(f"a height of at least {self.height}", height), field="height"
            )
        chosen = self.validators
        for effective_height, validators in self.pending_validators:
            if effective_height <= height:
                chosen = validators
        return chosen

    def is_replay(self, transaction_id: bytes, valid_until_height: int) -> bool:
        bucket = self.replay.get(valid_until_height)
        return bucket is not None and transaction_id in bucket.ids

    def queued(self, transfer_id: bytes) -> QueuedTransfer | None:
        for queue in self.queues.values():
            entry = queue.get(transfer_id)
            if entry is not None:
                return entry
        return None

    def position(self, bank: str) -> Position:
        if bank not in self.balances:
            raise StraitsError(expected("a bank's participant id", bank), field="bank")
        outgoing = list(self.queues.get(bank, PayerQueue()))
        incoming = [e for q in self.queues.values() for e in q if e.payee == bank]
        return Position(
            bank=bank,
            balance=self.balances[bank],
            queued_outgoing=sum(e.amount for e in outgoing),
            queued_outgoing_count=len(outgoing),
            queued_incoming=sum(e.amount for e in incoming),
            queued_incoming_count=len(incoming),
        )

    def recomputed_accumulator(self, *, replay_from_bucket_sums: bool = False) -> int:
        """The multiset hash rebuilt from the entries: what a loaded state is checked against.

        ``replay_from_bucket_sums`` takes each replay bucket's ``hash_sum`` as given (a
        loader that has just computed them), halving the work for the replay window.
        """
        accumulator = 0
        for p in self.participants.values():
            accumulator = statehash.add(accumulator, p.element(self.balances.get(p.id, 0)))
        for queue in self.queues.values():
            for entry in queue:
                accumulator = statehash.add(accumulator, entry.element())
        for bank, day in self.days.items():
            accumulator = statehash.add(accumulator, day.element(bank))
        for valid_until_height, bucket in self.replay.items():
            if replay_from_bucket_sums:
                accumulator = statehash.add(accumulator, bucket.hash_sum)
                continue
            for group in bucket.groups:
                accumulator = statehash.add(
                    accumulator, replay_group_element(group, valid_until_height)
                )
        return accumulator


def _validator_set_encoding(effective_height: int, validators: Mapping[str, PublicKey]) -> bytes:
    parts: list[str | int] = [effective_height, len(validators)]
    for validator_id in sorted(validators):
        parts += [validator_id, validators[validator_id].to_text()]
    return statehash.encode(b"validators", *parts)
