"""The audit's checks: one small function each, run on every block in order.

A check receives the ``BlockContext`` of one block (what the source holds, what it
decodes to, the state the replay started from and what the replay made of it) and
yields one sentence per thing that is wrong; the auditor files them under the block's
height and the check's name. Adding a check is adding a function and a row to
``CHECKS``: for a header field sealed later (a receipts root, say) the function
recomputes the field from the record and compares.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from straits.ledger.v1 import block_pb2 as block_pb
from straits.ledger.v1 import receipt_pb2 as receipt_pb

from clients.audit.records import BlockRecord
from ledger import codec
from ledger import receipts as sealed_receipts
from ledger.block import seal_bytes
from ledger.errors import InvalidBlockError
from ledger.execute import Execution
from ledger.keys import PublicKey
from ledger.quorum import quorum
from ledger.roles import Role
from ledger.state import NORMAL, URGENT, State
from ledger.transaction import Transaction


@dataclass
class BlockContext:
    record: BlockRecord
    expected_height: int  # the height after the previous record the source held
    before: State  # replayed state the block starts from
    parent_hash: bytes  # the hash of the previous record's header, or the genesis hash
    header: block_pb.BlockHeader | None  # None when the header bytes do not decode
    header_error: str
    hash: bytes  # computed from the header bytes as held
    ids: tuple[bytes, ...]  # computed from each transaction's signed bytes as held
    transactions: tuple[Transaction | None, ...]  # None where one does not decode
    decode_errors: Mapping[int, str]
    verdicts: tuple[bool, ...]  # signature verdict per transaction (True if undecodable)
    validators: Mapping[str, PublicKey]  # the validator set of the block's height
    execution: Execution  # the replay (lenient when the strict one refused the block)
    replay_error: str
    diverged: bool  # the replay already left the chain at an earlier height

    @property
    def after(self) -> State:
        return self.execution.state


Check = Callable[[BlockContext], Iterable[str]]
OUTCOMES = receipt_pb.Outcome


def _short(identifier: bytes) -> str:
    return identifier.hex()[:16]


def height(ctx: BlockContext) -> Iterator[str]:
    # A gap before this block is filed by the auditor under the missing heights.
    held = ctx.record.height
    if held < ctx.expected_height:
        yield f"block {held} held again after block {ctx.expected_height - 1}"
    if ctx.header is not None and ctx.header.height != held:
        yield f"header says height {ctx.header.height}, held as block {held}"


def header(ctx: BlockContext) -> Iterator[str]:
    if ctx.header is None:
        yield f"header bytes do not decode: {ctx.header_error}"
        return
    h, before = ctx.header, ctx.before
    if h.chain_id != before.chain_id:
        yield f"chain id {h.chain_id!r}, expected {before.chain_id!r}"
    if h.timestamp_ms < before.timestamp_ms:
        yield f"timestamp {h.timestamp_ms} earlier than its parent's {before.timestamp_ms}"
    if h.proposer not in ctx.validators:
        yield f"proposer {h.proposer!r} is not a validator of this height"


def header_hash(ctx: BlockContext) -> Iterator[str]:
    stored = ctx.record.stored_hash
    if stored is not None and stored != ctx.hash:
        yield f"stored hash {_short(stored)} but the header bytes hash to {_short(ctx.hash)}"


def parent_hash(ctx: BlockContext) -> Iterator[str]:
    if ctx.header is not None and ctx.header.parent_hash != ctx.parent_hash:
        yield (f"parent hash {_short(ctx.header.parent_hash)} is not the hash of the block "
               f"before it, {_short(ctx.parent_hash)}")


def transactions(ctx: BlockContext) -> Iterator[str]:
    for index, error in ctx.decode_errors.items():
        yield f"transaction {index} does not decode: {error}"
    stored = ctx.record.stored_ids
    if stored and stored != ctx.ids:
        for index, (kept, computed) in enumerate(zip(stored, ctx.ids, strict=False)):
            if kept != computed:
                yield (f"transaction {index}: stored id {_short(kept)} but its signed bytes "
                       f"hash to {_short(computed)}")
    if len(set(ctx.ids)) != len(ctx.ids):
        yield f"{len(ctx.ids) - len(set(ctx.ids))} transaction(s) carried twice"


def transactions_root(ctx: BlockContext) -> Iterator[str]:
    if ctx.header is not None and ctx.header.transactions_root != codec.merkle_root(
        list(ctx.ids)
    ):
        yield (f"transactions root {_short(ctx.header.transactions_root)} does not match the "
               f"{len(ctx.ids)} transactions held, in their order")


class _HeldReceipt(NamedTuple):
    """A held receipt as ``ledger.receipts`` reads a ``Receipt``: built from the held
    tuple at a tenth of the cost of the message (about 2 µs a transaction)."""

    transaction_id: bytes
    outcome: int
    reason: str
    detail: str


class _HeldSettlement(NamedTuple):
    transfer_id: bytes
    outcome: int
    by_offsetting: bool
    reason: str


def receipts_root(ctx: BlockContext) -> Iterator[str]:
    """The receipts and queue settlements held are the ones the validators sealed."""
    if ctx.header is None or any(t is None for t in ctx.transactions):
        return  # an undecodable transaction is named by ``transactions`` already
    present = [t for t in ctx.transactions if t is not None]
    try:
        try:
            root = sealed_receipts.receipts_root(
                present,
                list(map(_HeldReceipt._make, ctx.record.receipts)),  # type: ignore[arg-type]
                list(map(_HeldSettlement._make, ctx.record.settlements)),  # type: ignore[arg-type]
            )
        except (TypeError, ValueError, struct.error):
            # A damaged row (a value of another type): hashed as the messages would hold it.
            root = _receipts_root_from_messages(ctx, present)
    except InvalidBlockError as error:
        yield f"receipts held do not line up with the transactions: {error}"
        return
    if ctx.header.receipts_root != root:
        yield (f"receipts root {_short(ctx.header.receipts_root)} does not match the receipts "
               f"and settlements held ({_short(root)})")


def _receipts_root_from_messages(ctx: BlockContext, present: list[Transaction]) -> bytes:
    held = [receipt_pb.Receipt(transaction_id=i, outcome=o, reason=r, detail=d)
            for i, o, r, d in ctx.record.receipts]
    settled = [receipt_pb.QueueSettlement(transfer_id=t, outcome=o, by_offsetting=b, reason=r)
               for t, o, b, r in ctx.record.settlements]
    return sealed_receipts.receipts_root(present, held, settled)


def seals(ctx: BlockContext) -> Iterator[str]:
    held = ctx.record.seals
    if held is None:
        yield "the seals do not decode"
        return
    validators = ctx.validators
    message = seal_bytes(ctx.before.chain_id, ctx.hash)
    valid: set[str] = set()
    for seal in held:
        key = validators.get(seal.validator)
        if key is None:
            yield f"seal by {seal.validator!r}, not a validator of this height"
        elif seal.validator in valid:
            yield f"second seal by {seal.validator!r}"
        elif key.verify(seal.signature, message):
            valid.add(seal.validator)
        else:
            yield f"seal by {seal.validator!r} does not verify against this block's hash"
    needed = quorum(len(validators))
    if len(valid) < needed:
        yield f"{len(valid)} valid seals, a quorum of {len(validators)} validators is {needed}"


def signatures(ctx: BlockContext) -> Iterator[str]:
    if all(ctx.verdicts):
        return
    for index, (t, good) in enumerate(zip(ctx.transactions, ctx.verdicts, strict=True)):
        if t is not None and not good:
            yield (f"transaction {index} ({_short(t.id)}): signature does not verify "
                   f"against {t.signer!r}'s key")


def replay(ctx: BlockContext) -> Iterator[str]:
    if ctx.replay_error and not ctx.diverged:
        yield f"the ledger's rules refuse the block: {ctx.replay_error}"


def state_root(ctx: BlockContext) -> Iterator[str]:
    if ctx.header is None or ctx.diverged:
        return
    computed = ctx.execution.state_root
    if ctx.header.state_root != computed:
        yield (f"header state root {_short(ctx.header.state_root)}, replay gives "
               f"{_short(computed)}; later state roots are not compared")


def _outcome(value: int) -> str:
    if value not in OUTCOMES.values():
        return str(value)
    return OUTCOMES.Name(value).removeprefix("OUTCOME_")  # type: ignore[arg-type]


def receipts(ctx: BlockContext) -> Iterator[str]:
    if ctx.diverged:
        return
    held, replayed = ctx.record.receipts, ctx.execution.receipts
    if len(held) != len(replayed):
        yield f"{len(held)} receipts held, replay gives {len(replayed)}"
    for index, (receipt, r) in enumerate(zip(held, replayed, strict=False)):
        held_id, outcome, reason, detail = receipt
        if held_id != r.transaction_id:
            yield (f"receipt {index} is for {_short(held_id)}, replay's for "
                   f"{_short(r.transaction_id)}")
        elif (outcome, reason, detail) != (r.outcome, r.reason, r.detail):
            yield (f"transaction {index} ({_short(held_id)}): outcome "
                   f"{_outcome(outcome)}{' ' + reason if reason else ''} held, replay "
                   f"gives {_outcome(r.outcome)}{' ' + r.reason if r.reason else ''}"
                   + (f" (detail {detail!r}, replay {r.detail!r})" if detail != r.detail else ""))


def settlements(ctx: BlockContext) -> Iterator[str]:
    if ctx.diverged:
        return
    held = list(ctx.record.settlements)
    replayed = [(s.transfer_id, s.outcome, s.by_offsetting, s.reason)
                for s in ctx.execution.settlements]
    if held == replayed:
        return
    index = next(
        (i for i, (a, b) in enumerate(zip(held, replayed, strict=False)) if a != b),
        min(len(held), len(replayed)),
    )

    def describe(entries: list[tuple[bytes, int, bool, str]]) -> str:
        if index >= len(entries):
            return "none"
        transfer_id, outcome, by_offsetting, reason = entries[index]
        how = " by offsetting" if by_offsetting else ""
        return f"{_short(transfer_id)} {_outcome(outcome)}{how}{f' ({reason})' if reason else ''}"

    yield (f"queue settlement {index}: held {describe(held)}, replay gives "
           f"{describe(replayed)} ({len(held)} held, {len(replayed)} replayed)")


def conservation(ctx: BlockContext) -> Iterator[str]:
    after = ctx.after
    total = sum(after.balances.values())
    if total != after.supply:
        yield (f"balances sum to {total}, supply is {after.supply} "
               f"(issued {after.issued} - redeemed {after.redeemed})")
    if after.supply < 0 or after.redeemed < 0 or after.issued < 0:
        yield f"negative totals: issued {after.issued}, redeemed {after.redeemed}"


def balances(ctx: BlockContext) -> Iterator[str]:
    after = ctx.after
    for account in ctx.execution.changed_accounts:
        balance = after.balances.get(account, 0)
        if balance < 0:
            yield f"{account} has a negative balance, {balance}"


def queues(ctx: BlockContext) -> Iterator[str]:
    before, after = ctx.before, ctx.after
    for payer, queue in after.queues.items():
        if before.queues.get(payer) is queue:
            continue  # untouched by this block, checked when it last changed
        participant = after.participants.get(payer)
        if participant is None or participant.role != Role.BANK:
            yield f"a queue for {payer!r}, which is not a bank"
        for priority, entries in ((URGENT, queue.urgent), (NORMAL, queue.normal)):
            last = -1
            for transfer_id, entry in entries.items():
                if entry.transfer_id != transfer_id or entry.payer != payer:
                    yield f"queued {_short(transfer_id)} filed under the wrong key or payer"
                if entry.priority != priority:
                    yield f"queued {_short(transfer_id)} in the wrong priority class"
                if entry.amount <= 0:
                    yield f"queued {_short(transfer_id)} has amount {entry.amount}"
                if entry.seq <= last or entry.seq >= after.next_seq:
                    yield f"queued {_short(transfer_id)} out of arrival order (seq {entry.seq})"
                if entry.queued_height > after.height:
                    yield f"queued {_short(transfer_id)} at a later height, {entry.queued_height}"
                payee = after.participants.get(entry.payee)
                if payee is None or payee.role != Role.BANK:
                    yield f"queued {_short(transfer_id)} pays {entry.payee!r}, not a bank"
                last = entry.seq


CHECKS: tuple[tuple[str, Check], ...] = (
    ("height", height),
    ("header", header),
    ("header_hash", header_hash),
    ("parent_hash", parent_hash),
    ("transactions", transactions),
    ("transactions_root", transactions_root),
    ("receipts_root", receipts_root),
    ("seals", seals),
    ("signatures", signatures),
    ("replay", replay),
    ("state_root", state_root),
    ("receipts", receipts),
    ("settlements", settlements),
    ("conservation", conservation),
    ("balances", balances),
    ("queues", queues),
)
