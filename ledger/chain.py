"""A validator's committed chain: the ledger state, its store, and the engine's view of both.

``Chain`` is the consensus ``Application`` of a validator. It answers the engine
from the state at the head, builds proposals, validates proposals by executing
them, and is the one place a block is committed: ``commit`` writes the block to
the store, moves the head and then tells the commit listeners (the node loop's
mempool clean-up, the commit feed, metrics). Each block is executed once: the
execution made while building or validating a proposal is kept (by block hash)
and reused when the same block commits, so a committed block costs one store
write, not a second run of the rules.

Only one thread (the node loop) calls ``build``, ``validate`` and ``commit``;
readers on other threads take ``state``, ``head()`` or both at once with
``current()``; they are replaced together on each commit (one reference swap,
atomic under the GIL).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ledger import block as blocks
from ledger.block import Block
from ledger.consensus import BuildProposal, ChainHead
from ledger.errors import StoreError, expected
from ledger.execute import AlreadyVerified, Execution, SignatureCheck, apply_block, execute
from ledger.keys import PublicKey
from ledger.queue import Stopwatch
from ledger.state import State
from ledger.store import Store
from ledger.transaction import Transaction

# Executions kept for proposals not yet committed; a height rarely sees more than a few.
_EXECUTION_CACHE = 16
_SEALED = AlreadyVerified()

CommitListener = Callable[[Block, Execution], None]


class Chain:
    def __init__(self, store: Store, genesis_state: State, verify: SignatureCheck,
                 stopwatch: Stopwatch | None = None) -> None:
        self._store = store
        self._verify = verify
        self._stopwatch = stopwatch  # times the liquidity-saving run, for metrics
        state = store.load_state() or genesis_state
        # State and head are swapped together, as one value, so a reader never pairs
        # the head of one height with the state of another.
        self._current = (state, _head_of(store, state))
        self._executions: dict[bytes, Execution] = {}
        self._listeners: list[CommitListener] = []

    def add_listener(self, listener: CommitListener) -> None:
        """Call ``listener`` after each commit, once the block is stored and the head moved.

        Listeners run in the order added, on the committing thread; one that raises
        stops the commit's caller (the block is stored by then).
        """
        self._listeners.append(listener)

    # --- the consensus Application --------------------------------------------------

    @property
    def chain_id(self) -> str:
        return self.state.chain_id

    def head(self) -> ChainHead:
        return self._current[1]

    @property
    def state(self) -> State:
        return self._current[0]

    def current(self) -> tuple[State, ChainHead]:
        """The state and head of one height, taken together."""
        return self._current

    def validators_for(self, height: int) -> Mapping[str, PublicKey]:
        return self.state.validators_for(height)

    def validate(self, block: Block) -> None:
        if block.hash in self._executions:
            return
        verify = self._verify
        if block.seals:
            # A block with a quorum of valid seals is final: at least f+1 honest validators
            # checked every signature in it, so a node catching up need not check them again.
            # The seals are checked here, not trusted: a proposal never carries any.
            blocks.verify_seals(block, self.validators_for(block.height))
            verify = _SEALED
        self._remember(block.hash, apply_block(self.state, block, verify=verify,
                                                         stopwatch=self._stopwatch))

    # --- proposing and committing -----------------------------------------------------

    def build(
        self, request: BuildProposal, candidates: Sequence[Transaction], now_ms: int
    ) -> Block:
        """A block for ``request`` from ``candidates``: inadmissible ones are left out."""
        return self.build_proposal(request, candidates, now_ms)[0]

    def build_proposal(
        self, request: BuildProposal, candidates: Sequence[Transaction], now_ms: int
    ) -> tuple[Block, list[Transaction]]:
        """``build``, and the candidates left out because they can never be in a block on
        this chain (committed already, expired, badly signed)."""
        execution = execute(self.state, candidates, verify=self._verify, strict=False,
                            stopwatch=self._stopwatch)
        block = blocks.build(
            chain_id=self.chain_id,
            height=request.height,
            parent_hash=request.parent_hash,
            # Never before the parent: validators refuse a block that goes back in time.
            timestamp_ms=max(now_ms, self.state.timestamp_ms),
            proposer=request.proposer,
            round=request.round,
            transactions=execution.transactions,
            state_root=execution.state_root,
            receipts_root=execution.receipts_root,
        )
        self._remember(block.hash, execution.for_block(block))
        return block, [tx for tx, _ in execution.dropped]

    def commit(self, block: Block) -> Execution:
        """Store ``block`` (whose seals the engine has checked), move the head to it and
        tell the listeners."""
        execution = self._executions.pop(block.hash, None)
        if execution is None:
            self.validate(block)
            execution = self._executions.pop(block.hash)
        self._store.commit(block, execution)
        self._current = (
            execution.state,
            ChainHead(block.height, block.hash, block.header.proposer),
        )
        self._executions.clear()
        for listener in self._listeners:
            listener(block, execution)
        return execution

    def _remember(self, block_hash: bytes, execution: Execution) -> None:
        if len(self._executions) >= _EXECUTION_CACHE:
            self._executions.pop(next(iter(self._executions)))
        self._executions[block_hash] = execution


def _head_of(store: Store, state: State) -> ChainHead:
    if state.height == 0:
        return ChainHead(0, state.head_hash, "")
    block = store.block(state.height)
    if block is None:
        raise StoreError(expected(f"block {state.height} (the head) in the store", None))
    return ChainHead(block.height, block.hash, block.header.proposer)
