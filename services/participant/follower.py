"""Following finality: a participant node's checked copy of the chain's headers.

A bank or central-bank node streams committed blocks from one validator at a time
(``StreamBlocks``) and trusts none of them: each block must extend the last one it
accepted (height and parent hash, starting from the genesis hash), its header's
transactions root must match the listed transaction ids (a bank's view is redacted
but lists every id), every transaction it does carry must hash to one of those ids,
and it must carry a quorum of valid commit seals from the validator set. The receipts
and queue settlements served must be the ones the header's ``receipts_root`` seals
(``ledger.receipts``): a whole view (the central bank's) must carry every transaction
with its receipt, and a redacted one (a bank's) must place each receipt it shows at
its transaction's sealed leaf. A listed id this participant signed itself (``own``)
must be carried, so a validator cannot hide the outcome of one of its payments. The set
comes from ``GetHead``; when seals fall short it is fetched again once, since a
validator-set change may have taken effect (a bank cannot see that transaction).
A stream that fails or serves a bad block is dropped and the next validator is
asked, from the height after the last accepted block. A stream that stalls — no
block for ``STALL_S`` while another validator's head is already past ours, as when
the followed validator is cut off from its peers but still answers — is dropped
the same way by a watchdog.

Each accepted block goes to ``on_block`` before the next is read; the owner stores
it and the new follow position in one database transaction, so after a restart the
node resumes exactly where it stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import grpc
from straits.ledger.v1 import block_pb2 as block_pb
from straits.ledger.v1 import receipt_pb2 as receipt_pb
from straits.validator.v1 import validator_pb2 as pb

from ledger import codec
from ledger.block import Block, Seal, verify_seals
from ledger.errors import InvalidBlockError, QuorumError, StraitsError, expected
from ledger.keys import PublicKey
from ledger.receipts import check_redacted, check_whole
from ledger.transaction import Transaction
from services.participant.upstream import Upstream

log = logging.getLogger(__name__)

RETRY_S = 0.2
STALL_S = 3.0


@dataclass(frozen=True)
class FollowedBlock:
    """A checked block: the transactions this participant may see, with what they did."""

    height: int
    hash: bytes
    timestamp_ms: int
    transactions: tuple[Transaction, ...]
    receipts: Mapping[bytes, receipt_pb.Receipt]
    settlements: tuple[receipt_pb.QueueSettlement, ...]


def check_view(
    view: pb.BlockView,
    *,
    chain_id: str,
    height: int,
    parent_hash: bytes,
    validators: Mapping[str, PublicKey],
    whole: bool = False,
    own: Callable[[Sequence[bytes]], Collection[bytes]] = lambda ids: (),
) -> FollowedBlock:
    """The block of ``view`` if it is the final successor of ``parent_hash``; else raises.

    ``whole``: this participant sees every transaction, so a redacted view is refused.
    ``own``: which of the listed ids this participant signed (it must be shown them).
    """
    header = codec.decode(block_pb.BlockHeader, view.block.header)
    if header.chain_id != chain_id:
        raise InvalidBlockError(
            expected(f"chain {chain_id!r}", header.chain_id), field="header.chain_id"
        )
    if header.height != height:
        raise InvalidBlockError(expected(f"block {height}", header.height), field="header.height")
    if header.parent_hash != parent_hash:
        raise InvalidBlockError(
            expected(f"parent {parent_hash.hex()[:16]}", header.parent_hash.hex()[:16]),
            field="header.parent_hash",
        )
    ids = [bytes(i) for i in view.transaction_ids]
    if codec.merkle_root(ids) != header.transactions_root:
        raise InvalidBlockError(
            "transactions_root does not match the listed transaction ids", field="transaction_ids"
        )
    listed = set(ids)
    transactions = tuple(Transaction.from_proto(chain_id, t) for t in view.block.transactions)
    for tx in transactions:
        if tx.id not in listed:
            raise InvalidBlockError(
                expected("a transaction listed in the block", tx.id.hex()),
                field="block.transactions",
            )
    block_hash = codec.block_hash(chain_id, view.block.header)
    sealed = Block(
        header,
        bytes(view.block.header),
        block_hash,
        (),
        tuple(Seal(s.validator, s.signature) for s in view.block.seals),
    )
    verify_seals(sealed, validators)
    if whole or not view.redacted:
        if view.redacted:
            raise InvalidBlockError(expected("a whole block", "a redacted view"), field="redacted")
        check_whole(
            header.receipts_root, ids, transactions, view.receipts, view.queue_settlements
        )
    else:
        check_redacted(
            header.receipts_root,
            ids,
            [bytes(h) for h in view.receipt_hashes],
            transactions,
            view.receipts,
            view.queue_settlements,
        )
    shown = {t.id for t in transactions}
    hidden = [i for i in own(ids) if i not in shown]
    if hidden:
        raise InvalidBlockError(
            expected("every transaction this participant signed", f"{len(hidden)} withheld"),
            field="block.transactions",
        )
    receipts = {bytes(r.transaction_id): r for r in view.receipts}
    return FollowedBlock(
        height,
        block_hash,
        header.timestamp_ms,
        transactions,
        receipts,
        tuple(view.queue_settlements),
    )


class Follower:
    def __init__(
        self,
        upstream: Upstream,
        *,
        chain_id: str,
        height: int,
        last_hash: bytes,
        on_block: Callable[[FollowedBlock], None],
        whole: bool = False,
        own: Callable[[Sequence[bytes]], Collection[bytes]] = lambda ids: (),
    ) -> None:
        self._upstream = upstream
        self._whole = whole
        self._own = own
        self._chain_id = chain_id
        self._height = height
        self._hash = last_hash
        self._on_block = on_block
        self._validators: dict[str, PublicKey] = {}
        self._stopped = threading.Event()
        self._stream: grpc.Call | None = None
        self._changed = threading.Condition()
        self._following: int | None = None
        self._progress = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="follower", daemon=True)
        self._watchdog = threading.Thread(target=self._watch, name="follower-watch", daemon=True)

    @property
    def height(self) -> int:
        return self._height

    def start(self) -> Follower:
        self._thread.start()
        self._watchdog.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        stream = self._stream
        if stream is not None:
            stream.cancel()
        with self._changed:
            self._changed.notify_all()
        self._thread.join(timeout=5)
        self._watchdog.join(timeout=5)

    def wait_for(self, ready: Callable[[], bool], timeout: float) -> bool:
        """Waits, block by block, until ``ready()`` holds; False on timeout or stop."""
        with self._changed:
            return (
                self._changed.wait_for(lambda: ready() or self._stopped.is_set(), timeout)
                and ready()
            )

    def _run(self) -> None:
        while not self._stopped.is_set():
            for index in self._upstream.order():
                if self._stopped.is_set():
                    return
                try:
                    self._follow(index)
                except grpc.RpcError as error:
                    if not self._stopped.is_set():
                        log.info(
                            "following %s stopped: %s",
                            self._upstream.name(index),
                            error.code().name,
                        )
                        self._upstream.failed(index)
                except StraitsError as error:
                    log.warning("refused a block from %s: %s", self._upstream.name(index), error)
                    self._upstream.failed(index)
            self._stopped.wait(RETRY_S)

    def _follow(self, index: int) -> None:
        self._refresh_validators(index)
        stream = self._upstream.stream_blocks(index, self._height + 1)
        self._stream, self._following, self._progress = stream, index, time.monotonic()
        try:
            for answer in stream:
                if self._stopped.is_set():
                    return
                block = self._check(index, answer.block)
                self._on_block(block)
                with self._changed:
                    self._height, self._hash = block.height, block.hash
                    self._progress = time.monotonic()
                    self._changed.notify_all()
        finally:
            self._following = None

    def _watch(self) -> None:
        while not self._stopped.wait(STALL_S / 3):
            following = self._following
            if following is None or time.monotonic() - self._progress < STALL_S:
                continue
            for index in self._upstream.order():
                if index == following:
                    continue
                try:
                    ahead = self._upstream.head(index).height > self._height
                except grpc.RpcError:
                    continue
                if ahead:
                    log.warning(
                        "%s stalled at height %d; following another validator",
                        self._upstream.name(following),
                        self._height,
                    )
                    self._upstream.failed(following)
                    stream = self._stream
                    if stream is not None:
                        stream.cancel()
                    break
            self._progress = time.monotonic()

    def _check(self, index: int, view: pb.BlockView) -> FollowedBlock:
        def check() -> FollowedBlock:
            return check_view(
                view,
                chain_id=self._chain_id,
                height=self._height + 1,
                parent_hash=self._hash,
                validators=self._validators,
                whole=self._whole,
                own=self._own,
            )

        try:
            return check()
        except QuorumError:
            self._refresh_validators(index)
            return check()

    def _refresh_validators(self, index: int) -> None:
        head = self._upstream.head(index)
        if head.chain_id != self._chain_id:
            raise InvalidBlockError(
                expected(f"chain {self._chain_id!r}", head.chain_id), field="chain_id"
            )
        self._validators = {v.id: PublicKey.from_proto(v.key) for v in head.validators}
