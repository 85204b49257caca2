"""What a bank node and the central-bank node share: sign, record, forward, follow, wait.

``ParticipantNode`` is the composition root both build on. ``start()`` opens the
node's SQLite file, links to every validator (``Upstream``), starts the batching
``Submitter``, the ``Follower`` (from the height it stopped at), a resender and the
gRPC server with the subclass's service; ``stop()`` undoes them in reverse.

The life of a transaction the node signs:

1. ``sign`` draws a random nonce and sets ``valid_until_height`` to the head plus
   the ledger's maximum lifetime less a margin (blocks that commit while it
   travels), so it can never be taken after that height;
2. ``record`` stores it in the outbox (with the client's request id) before it
   leaves the node;
3. ``forward`` sends it in a batch; a refusal that retrying cannot cure is final
   (the entry is ``refused``); back-pressure and unreachable validators are not: the
   resender forwards pending entries again until a block carries them or their
   window passes (re-sending a signed transaction is always safe: the validators
   answer ALREADY_PENDING or ALREADY_COMMITTED);
4. the follower marks it committed with its receipt, or expired; ``wait_final``
   returns once it is no longer pending (committed whatever its receipt says, refused
   or expired).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf.message import Message
from straits.common.v1 import common_pb2 as common_pb
from straits.ledger.v1 import transaction_pb2 as tx_pb
from straits.validator.v1 import validator_pb2 as pb

from ledger import codec, transaction
from ledger import genesis as genesis_file
from ledger.errors import ExpiredError, StraitsError, expected
from ledger.keys import PrivateKey
from ledger.transaction import Transaction
from services.common.config import NodeConfig
from services.common.errors import (
    DuplicateRequestError,
    InvalidRequestError,
    UnavailableError,
)
from services.common.server import Service, create_server
from services.participant.follower import FollowedBlock, Follower
from services.participant.metrics import start_participant_metrics
from services.participant.outbox import PENDING, Entry, NodeDb, Outbox
from services.participant.upstream import Submitter, Upstream, item_error, submitted

log = logging.getLogger(__name__)

# Refusals that leave the entry pending: back-pressure and outages may pass, and an
# expired window is recorded as EXPIRED by the follower, from the chain itself.
NOT_FINAL_REASONS = frozenset({"overloaded", "unavailable", "expired"})
MAX_REQUEST_ID = 64


@dataclass(frozen=True)
class Request:
    """Something to sign and record: ``make`` signs it, ``also`` writes alongside it."""

    request_id: str | None
    fingerprint: bytes
    make: Callable[[], Transaction]
    also: Callable[[sqlite3.Connection, Transaction], None] | None = None


@dataclass(frozen=True)
class ParticipantSettings:
    # Blocks the head may advance between signing and a validator's admission check.
    lifetime_margin: int = 16
    resend_after_s: float = 2.0
    resend_every_s: float = 0.5
    grace_seconds: float = 2.0


def fingerprint(message: Message) -> bytes:
    """What identifies a request's content, request id aside."""
    return hashlib.sha256(codec.encode(message)).digest()


def check_request_id(request_id: str, field: str = "request_id") -> None:
    if not 1 <= len(request_id) <= MAX_REQUEST_ID or not request_id.isprintable():
        raise InvalidRequestError(
            expected(f"1..{MAX_REQUEST_ID} printable characters", request_id), field=field
        )


def remaining(context: grpc.ServicerContext, default: float = 30.0) -> float:
    """Time left before the caller's deadline, less a little to answer in."""
    left = context.time_remaining()
    if left is None:
        return default
    return max(0.0, min(left, default) - 0.05)


class ParticipantNode:
    """Base of ``BankNode`` and ``CentralBankNode``; subclasses add tables and a service."""

    # Whether the metrics endpoint counts payments (a bank's, not the central bank's).
    exports_payments = False
    # Whether validators serve this participant whole blocks (the central bank's role).
    sees_whole_blocks = False

    def __init__(self, config: NodeConfig, settings: ParticipantSettings | None = None) -> None:
        self.config = config
        self.settings = settings or ParticipantSettings()
        self.port = 0
        self._running = False
        self._head_seen: int | None = None

    # --- subclass hooks ----------------------------------------------------------------

    def _setup(self, db: NodeDb) -> None:
        """Create the subclass's tables."""

    def _services(self) -> list[Service]:
        raise NotImplementedError

    def _record_block(
        self, conn: sqlite3.Connection, block: FollowedBlock, expired: list[bytes]
    ) -> None:
        """Store what ``block`` means to this participant, inside the block's transaction."""

    def _after_block(self, block: FollowedBlock) -> None:
        """Called once the block is stored (wake watchers)."""

    # --- life cycle --------------------------------------------------------------------

    def start(self) -> int:
        config = self.config
        self.genesis = genesis = genesis_file.load(config.genesis)
        self.chain_id = genesis.chain_id
        self.key = PrivateKey.load(config.ledger_key)
        self._lifetime = genesis.parameters.max_transaction_lifetime
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = db = NodeDb(config.data_dir / "node.db")
        self.outbox = Outbox(db, self.chain_id)
        self._setup(db)
        self.upstream = Upstream(config.validators, config.tls)
        self.submitter = Submitter(self.upstream).start()
        height = int(db.get_meta("follow_height", 0))
        last_hash = db.get_meta("follow_hash", genesis.hash)
        self._head_seen = None
        self.follower = Follower(
            self.upstream,
            chain_id=self.chain_id,
            height=height,
            last_hash=bytes(last_hash),  # type: ignore[arg-type]
            on_block=self._apply,
            whole=self.sees_whole_blocks,
            own=self.outbox.known,
        )
        self.server, self.port = create_server(config.server_settings, self._services())
        self._stopping = threading.Event()
        self._resender = threading.Thread(target=self._resend, name="resender", daemon=True)
        self._running = True
        self.follower.start()
        self._resender.start()
        self.server.start()
        log.info("%s listening on port %d, following from height %d", config.id, self.port, height)
        self.metrics = start_participant_metrics(self, payments=self.exports_payments)
        return self.port

    def stop(self) -> None:
        if not self._running:
            return
        if self.metrics is not None:
            self.metrics.stop()
        self._running = False
        self._stopping.set()
        self.server.stop(self.settings.grace_seconds).wait()
        self._resender.join(timeout=5)
        self.follower.stop()
        self.submitter.stop()
        self.upstream.close()
        self.db.close()

    @property
    def participant_id(self) -> str:
        return self.config.id

    @property
    def height(self) -> int:
        """The last block this node has checked and stored."""
        return self.follower.height

    # --- signing and forwarding --------------------------------------------------------

    def head_height(self) -> int:
        """The chain's height as far as this node knows: the head a validator reported
        when the node first signed, or what it has followed since, whichever is higher.
        Asking once matters after downtime: the stored height may be far behind."""
        if self._head_seen is None:
            self._head_seen = self.upstream.call("GetHead", pb.GetHeadRequest()).height
        return max(self._head_seen, self.follower.height)

    def sign(self, **kind: object) -> Transaction:
        body = tx_pb.TransactionBody(
            signer=self.participant_id,
            valid_until_height=self.head_height() + self._lifetime - self.settings.lifetime_margin,
            nonce=secrets.randbits(64),
            **kind,  # type: ignore[arg-type]
        )
        return transaction.sign(self.chain_id, self.key, body)

    def record(self, request: Request) -> Entry:
        """The entry for ``request``: the one recorded before under its request id, or a
        new one. A request id seen before with another fingerprint is a
        ``DuplicateRequestError``: the first request stands."""
        [result] = self.record_many([request])
        if isinstance(result, StraitsError):
            raise result
        return result

    def record_many(self, requests: Sequence[Request]) -> list[Entry | StraitsError]:
        """``record`` for each request, in order; all new entries in one database write."""
        results: list[Entry | StraitsError | None] = [None] * len(requests)
        ids = [r.request_id for r in requests if r.request_id is not None]
        known = self.outbox.by_requests(ids)
        made = []
        for at, request in enumerate(requests):
            try:
                existing = known.get(request.request_id) if request.request_id else None
                if existing is not None:
                    results[at] = self._same(existing, request.fingerprint)
                else:
                    made.append((at, request, request.make()))
            except StraitsError as error:
                results[at] = error
        with self.db.write() as conn:
            # Concurrent retries of the same requests may have won the race.
            in_batch = self.outbox.by_requests(
                [r.request_id for _, r, _ in made if r.request_id is not None]
            )
            for at, request, tx in made:
                request_id = request.request_id
                if request_id is not None:
                    # Recorded meanwhile, or earlier in this same batch.
                    earlier = in_batch.get(request_id)
                    if earlier is not None:
                        try:
                            results[at] = self._same(earlier, request.fingerprint)
                        except StraitsError as error:
                            results[at] = error
                        continue
                Outbox.add(conn, tx, request_id, request.fingerprint)
                if request.also is not None:
                    request.also(conn, tx)
                entry = Entry(tx, request_id, request.fingerprint, PENDING, 0, None, None)
                results[at] = entry
                if request_id is not None:
                    in_batch[request_id] = entry
        return [r for r in results if r is not None]

    @staticmethod
    def _same(entry: Entry, fingerprint: bytes) -> Entry:
        if entry.fingerprint != fingerprint:
            raise DuplicateRequestError(
                expected(
                    f"the content first sent with request id {entry.request_id!r}",
                    "different content",
                ),
                field="request_id",
            )
        return entry

    def forward(
        self, transactions: Sequence[Transaction], timeout: float
    ) -> list[common_pb.Error | None]:
        """Forwards in one batch; per transaction, None when the validators hold it or
        the refusal. Final refusals are recorded. ``UnavailableError`` when no validator
        answered: the entries stay pending and the resender keeps trying."""
        results = self.submitter.submit(transactions, timeout)
        errors: list[common_pb.Error | None] = []
        sent = []
        for tx, result in zip(transactions, results, strict=True):
            if submitted(result):
                errors.append(None)
                sent.append(tx.id)
                continue
            errors.append(result.error)
            if result.error.reason not in NOT_FINAL_REASONS:
                self.outbox.refuse(tx.id, result.error)
        if sent:
            self.outbox.sent(sent)
        return errors

    def wait_final(self, tx_ids: Sequence[bytes], timeout: float) -> bool:
        """Waits until none of ``tx_ids`` is pending: a block carried it (settled, queued or
        rejected: its receipt says), a validator refused it for good, or its window passed."""

        def done() -> bool:
            for tx_id in tx_ids:
                entry = self.outbox.by_id(tx_id)
                if entry is not None and entry.state == PENDING:
                    return False
            return True

        return done() or self.follower.wait_for(done, timeout)

    def send_and_wait(self, entry: Entry, timeout: float) -> common_pb.Commit:
        """Forwards ``entry`` (unless it was already final) and waits for the block that
        carries it. A refusal at admission or an expiry raises; a rejection inside a
        block is a commit whose receipt says REJECTED (final, and on the chain)."""
        if entry.state == PENDING:
            errors = self.forward([entry.transaction], timeout)
            # A passing refusal (overload, outage) leaves the entry pending and the resender
            # delivers it: waiting for the block, not raising, keeps the answer truthful.
            if errors[0] is not None and errors[0].reason not in NOT_FINAL_REASONS:
                raise item_error(errors[0])
            if not self.wait_final([entry.transaction.id], timeout):
                raise UnavailableError(
                    expected(
                        "a block carrying the transaction before the deadline",
                        "none yet; ask again with the same request",
                    )
                )
        elif entry.error is not None:
            raise item_error(entry.error)
        final = self.outbox.by_id(entry.transaction.id)
        commit = final.commit() if final is not None else None
        if commit is None:
            raise ExpiredError(
                expected(
                    f"a block up to height {entry.transaction.body.valid_until_height} carrying it",
                    "none: it can never be taken now",
                )
            )
        return commit

    def _resend(self) -> None:
        while not self._stopping.wait(self.settings.resend_every_s):
            stale = self.outbox.unsent_since(time.time() - self.settings.resend_after_s, 2000)
            if not stale:
                continue
            try:
                self.forward(stale, timeout=10)
            except Exception as error:  # a failed round is retried on the next one
                log.info("re-forwarding %d pending transactions failed: %s", len(stale), error)

    # --- following -----------------------------------------------------------------------

    def _apply(self, block: FollowedBlock) -> None:
        with self.db.write() as conn:
            receipts = block.receipts
            Outbox.committed(conn, block.height, [
                (tx.id, receipts[tx.id]) for tx in block.transactions if tx.id in receipts])
            expired = Outbox.expire(conn, block.height)
            self._record_block(conn, block, expired)
            NodeDb.set_meta(conn, "follow_height", block.height)
            NodeDb.set_meta(conn, "follow_hash", block.hash)
        self._after_block(block)
