"""Executing transactions and applying blocks: the one way a State moves forward.

``execute(state, transactions, verify=..., strict=...)`` runs the transactions of the
next block (height ``state.height + 1``) in order:

1. admission, without touching the state: right chain, signer known (in the state
   the block starts from), ``valid_until_height`` neither passed nor further ahead than
   ``max_transaction_lifetime``, id not remembered (nor earlier in the same block), keys
   carried by governance well formed;
2. one batch call to the signature check for every transaction that passed;
3. the business rules (``ledger.rules``) one transaction at a time, each giving a receipt;
   a refusal also keeps the rule's own error in ``Execution.rejections``;
4. the end-of-block queue pass (``ledger.queue.settle_queues``), then the new State.

An inadmissible transaction (``InadmissibleError``) raises ``InvalidBlockError`` when
``strict`` (a block being validated) and is dropped otherwise (a proposer building a
block, which then carries only what was kept: ``Execution.transactions``). Every
transaction that stays, even one a business rule REJECTED, consumes its id.

The State an execution returns still names its parent as head: the block hash depends on
the state root, so ``Execution.for_block(block)`` stamps it once the block exists;
``apply_block`` does that itself after checking the header, the state root and the
receipts root (``ledger.receipts``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from straits.ledger.v1 import receipt_pb2 as receipt_pb

from ledger import codec
from ledger.block import Block
from ledger.errors import (
    BadSignatureError,
    ExpiredError,
    InadmissibleError,
    InvalidBlockError,
    RejectedError,
    ReplayError,
    UnknownSignerError,
    WrongChainError,
    expected,
)
from ledger.keys import PublicKey
from ledger.lsm import OffsettingRun
from ledger.queue import Stopwatch, settle_queues
from ledger.receipts import leaves
from ledger.rules import apply, rejected
from ledger.state import QueuedTransfer, State
from ledger.transaction import Transaction
from ledger.working import WorkingState


class SignatureCheck(Protocol):
    """What ``ledger.verifier.BatchVerifier`` offers: one verdict per transaction, in order."""

    def verify_transactions(
        self, transactions: Sequence[Transaction], key_of: Callable[[str], PublicKey | None]
    ) -> list[bool]: ...


class InlineCheck:
    """Checks each signature on the calling thread: for tests and tiny tools."""

    def verify_transactions(
        self, transactions: Sequence[Transaction], key_of: Callable[[str], PublicKey | None]
    ) -> list[bool]:
        verdicts = []
        for t in transactions:
            key = key_of(t.signer)
            verdicts.append(key is not None and key.verify(t.signature, t.signed))
        return verdicts


class AlreadyVerified:
    """Trusts every signature. Only for transactions whose signatures this process has
    itself checked already (a replay of its own store, the apply benchmark)."""

    def verify_transactions(
        self, transactions: Sequence[Transaction], key_of: Callable[[str], PublicKey | None]
    ) -> list[bool]:
        return [True] * len(transactions)


@dataclass(frozen=True)
class Execution:
    state: State
    transactions: tuple[Transaction, ...]
    receipts: tuple[receipt_pb.Receipt, ...]
    settlements: tuple[receipt_pb.QueueSettlement, ...]
    dropped: tuple[tuple[Transaction, InadmissibleError], ...] = ()
    excess: tuple[Transaction, ...] = ()
    # The error each REJECTED receipt stands for, by transaction id, as its rule raised it.
    rejections: Mapping[bytes, RejectedError] = field(default_factory=dict)
    # What changed, for a store that writes deltas: accounts by id, queue entries by seq.
    changed_accounts: frozenset[str] = frozenset()
    queue_changes: Mapping[int, QueuedTransfer | None] = field(default_factory=dict)
    offsetting: OffsettingRun | None = None

    @property
    def state_root(self) -> bytes:
        return self.state.root()

    @functools.cached_property
    def receipt_leaves(self) -> list[bytes]:
        """The receipts root's leaves, hashed once: the root is checked or built from them,
        and a validator lists them in every redacted view of the block."""
        return leaves(self.transactions, self.receipts, self.settlements)

    @property
    def receipts_root(self) -> bytes:
        return codec.merkle_root(self.receipt_leaves)

    def for_block(self, block: Block) -> Execution:
        """The same execution with the block it became recorded as the state's head."""
        state = dataclasses.replace(
            self.state, head_hash=block.hash, timestamp_ms=block.header.timestamp_ms
        )
        stamped = dataclasses.replace(self, state=state)
        if "receipt_leaves" in self.__dict__:  # hashed already: the receipts are the same
            stamped.__dict__["receipt_leaves"] = self.__dict__["receipt_leaves"]
        return stamped


def admission_error(
    state: State, transaction: Transaction, height: int
) -> InadmissibleError | None:
    """Why ``transaction`` may never be in block ``height`` on top of ``state``, or None.

    Signatures are not checked here: they are checked in batches.
    """
    if transaction.chain_id != state.chain_id:
        return WrongChainError(
            expected(f"chain {state.chain_id!r}", transaction.chain_id), field="chain_id"
        )
    body = transaction.body
    if body.signer not in state.participants:
        return UnknownSignerError(expected("a participant id", body.signer), field="signer")
    valid_until = body.valid_until_height
    if valid_until < height:
        return ExpiredError(
            expected(f"valid_until_height >= {height}", valid_until), field="valid_until_height"
        )
    horizon = height + state.parameters.max_transaction_lifetime
    if valid_until > horizon:
        return ExpiredError(
            expected(f"valid_until_height <= {horizon} (max_transaction_lifetime)", valid_until),
            field="valid_until_height",
        )
    if state.is_replay(transaction.id, valid_until):
        return ReplayError(
            expected("a transaction not applied before", transaction.id.hex()), field="id"
        )
    return None


def execute(
    state: State,
    transactions: Sequence[Transaction],
    *,
    verify: SignatureCheck,
    strict: bool,
    stopwatch: Stopwatch | None = None,
) -> Execution:
    included, dropped, excess, working, receipts, rejections = _run(
        state, transactions, verify, strict
    )
    settle_queues(working, stopwatch)
    return Execution(
        state=working.finish(),
        transactions=tuple(included),
        receipts=tuple(receipts),
        settlements=tuple(working.settlements),
        dropped=tuple(dropped),
        excess=excess,
        rejections=rejections,
        changed_accounts=frozenset(working.touched_accounts),
        queue_changes=working.queue_changes,
        offsetting=working.offsetting,
    )


def rule_rejections(
    state: State, transactions: Sequence[Transaction], *, verify: SignatureCheck
) -> dict[bytes, RejectedError]:
    """What the business rules refuse among ``transactions`` applied in order on ``state``:
    ``execute`` without the end-of-block queue pass and the new state, which cannot
    change a refusal (they come after every rule ran), for admission's dry run."""
    return _run(state, transactions, verify, strict=False)[5]


def _run(
    state: State, transactions: Sequence[Transaction], verify: SignatureCheck, strict: bool
) -> tuple[
    list[Transaction],
    list[tuple[Transaction, InadmissibleError]],
    tuple[Transaction, ...],
    WorkingState,
    list[receipt_pb.Receipt],
    dict[bytes, RejectedError],
]:
    """Chain checks, signatures and the rules of each transaction, in block order."""
    height = state.height + 1
    limit = state.parameters.max_block_transactions
    if strict and len(transactions) > limit:
        raise InvalidBlockError(
            expected(f"at most {limit} transactions", len(transactions)), field="transactions"
        )
    admitted: list[Transaction] = []
    positions: list[int] = []
    dropped: list[tuple[Transaction, InadmissibleError]] = []
    seen: dict[bytes, int] = {}
    for index, transaction in enumerate(transactions):
        error = admission_error(state, transaction, height)
        if error is None and transaction.id in seen:
            error = ReplayError(
                expected("a transaction not already in this block", transaction.id.hex()),
                field="id",
            )
        if error is not None:
            _reject_or_drop(strict, index, transaction, error, dropped)
            continue
        seen[transaction.id] = transaction.body.valid_until_height
        admitted.append(transaction)
        positions.append(index)
    verdicts = verify.verify_transactions(admitted, key_lookup(state))
    included: list[Transaction] = []
    for index, transaction, good in zip(positions, admitted, verdicts, strict=True):
        if not good:
            error = BadSignatureError(
                expected(f"a signature by {transaction.signer}'s key", "one that fails"),
                field="signature",
            )
            _reject_or_drop(strict, index, transaction, error, dropped)
            seen.pop(transaction.id)
        else:
            included.append(transaction)
    excess = tuple(included[limit:])
    for transaction in excess:
        seen.pop(transaction.id)
    included = included[:limit]

    working = WorkingState(state)
    working.consumed_ids = seen
    receipts: list[receipt_pb.Receipt] = []
    rejections: dict[bytes, RejectedError] = {}
    for transaction in included:
        try:
            outcome = apply(working, transaction)
        except RejectedError as error:
            rejections[transaction.id] = error
            receipts.append(rejected(transaction, error))
        else:
            receipts.append(receipt_pb.Receipt(transaction_id=transaction.id, outcome=outcome))
    return included, dropped, excess, working, receipts, rejections


def apply_block(
    state: State, block: Block, *, verify: SignatureCheck, stopwatch: Stopwatch | None = None
) -> Execution:
    """Check ``block`` against ``state``, execute it strictly and check its state root."""
    header = block.header
    height = state.height + 1
    checks = (
        (
            "header.chain_id",
            header.chain_id == state.chain_id,
            f"chain {state.chain_id!r}",
            header.chain_id,
        ),
        ("header.height", header.height == height, f"height {height}", header.height),
        (
            "header.parent_hash",
            header.parent_hash == state.head_hash,
            f"parent {state.head_hash.hex()}",
            header.parent_hash.hex(),
        ),
        (
            "header.timestamp_ms",
            header.timestamp_ms >= state.timestamp_ms,
            f"a timestamp of at least {state.timestamp_ms}",
            header.timestamp_ms,
        ),
        (
            "header.proposer",
            header.proposer in state.validators_for(height),
            f"a validator of height {height}",
            header.proposer,
        ),
    )
    for where, ok, wanted, came in checks:
        if not ok:
            raise InvalidBlockError(expected(wanted, came), field=where)
    execution = execute(state, block.transactions, verify=verify, strict=True,
                        stopwatch=stopwatch)
    root = execution.state_root
    if header.state_root != root:
        raise InvalidBlockError(
            expected(f"state root {root.hex()}", header.state_root.hex()), field="header.state_root"
        )
    sealed = execution.receipts_root
    if header.receipts_root != sealed:
        raise InvalidBlockError(
            expected(f"receipts root {sealed.hex()}", header.receipts_root.hex()),
            field="header.receipts_root",
        )
    return execution.for_block(block)


def key_lookup(state: State) -> Callable[[str], PublicKey | None]:
    participants = state.participants

    def key_of(signer: str) -> PublicKey | None:
        participant = participants.get(signer)
        return participant.key if participant is not None else None

    return key_of


def _reject_or_drop(
    strict: bool,
    index: int,
    transaction: Transaction,
    error: InadmissibleError,
    dropped: list[tuple[Transaction, InadmissibleError]],
) -> None:
    if strict:
        raise InvalidBlockError(
            f"transaction {index} ({transaction.id.hex()[:16]}) is inadmissible: {error}",
            field=f"transactions[{index}]",
        ) from error
    dropped.append((transaction, error))
