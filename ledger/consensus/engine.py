"""The QBFT engine: a deterministic state machine in the shape of etcd raft's RawNode.

Events in: ``start``, ``tick``, ``receive`` (wire bytes), ``transactions_available``,
``propose`` (the block asked for by ``Ready.build``), ``synced`` (a fetched block),
``advance`` (after committed blocks were applied). Each returns a ``Ready``: what
to persist, send, commit, fetch or build (see ``ledger.consensus.ready`` for the
order). No I/O, clock, thread or randomness inside: the same events give the
same ``Ready`` values, which is what the simulated network relies on.

Admission of a message is a chain of cheap-to-costly checks: structure (decode),
height window, duplicate, membership and signature, then the rules of its step.
"""

from __future__ import annotations

from straits.consensus.v1 import consensus_pb2 as pb

from ledger.block import Block, Seal, seal_bytes, verify_seals
from ledger.consensus.application import Application, ChainHead
from ledger.consensus.config import ConsensusConfig
from ledger.consensus.justification import (
    HeightContext,
    check_block_header,
    check_proposal,
    check_round_change,
    check_signed,
    highest_prepared,
)
from ledger.consensus.messages import Message, Signed, Step
from ledger.consensus.ready import BuildProposal, Counters, FetchBlocks, Outbound, Ready
from ledger.consensus.round_state import Added, FutureMessages, HeightMessages
from ledger.consensus.signer import LastSigned, Prepared, Signer
from ledger.consensus.sync import SyncTracker
from ledger.errors import InvalidBlockError, InvalidMessageError, QuorumError
from ledger.keys import PrivateKey
from ledger.quorum import weak_quorum

_VERIFIED_LIMIT = 8192


class Engine:
    def __init__(
        self,
        *,
        application: Application,
        identity: str,
        key: PrivateKey,
        config: ConsensusConfig | None = None,
        last_signed: LastSigned | None = None,
    ) -> None:
        self._app = application
        self._chain_id = application.chain_id
        self._identity = identity
        self._config = config or ConsensusConfig()
        self._signer = Signer(self._chain_id, identity, key, last_signed)
        self._counters = Counters()
        self._sync = SyncTracker(self._config)
        self._future = FutureMessages(
            limit=self._config.max_buffered, per_sender=self._config.max_buffered_per_sender
        )
        self._reset_outbox()

    # --- events ---------------------------------------------------------------------

    def start(self) -> Ready:
        return self._run(self._start_height)

    def advance(self) -> Ready:
        """The committed blocks of the last ``Ready`` are applied: decide the next height."""
        return self._run(lambda: self._decided and self._start_height())

    def tick(self) -> Ready:
        return self._run(self._on_tick)

    def receive(self, data: bytes) -> Ready:
        return self._run(lambda: self._receive(data))

    def receive_message(self, message: Message) -> Ready:
        """For a runtime that decoded the bytes already (``Message.decode``), e.g. once for all."""
        return self._run(lambda: self._handle(message))

    def transactions_available(self) -> Ready:
        return self._run(lambda: self._decided or self._activate())

    def propose(self, block: Block) -> Ready:
        return self._run(lambda: self._on_built(block))

    def synced(self, block: Block) -> Ready:
        return self._run(lambda: self._on_synced(block))

    # --- read-only views ------------------------------------------------------------

    @property
    def height(self) -> int:
        return self._ctx.height

    @property
    def round(self) -> int:
        return self._round

    @property
    def last_signed(self) -> LastSigned | None:
        return self._signer.last

    @property
    def counters(self) -> Counters:
        return self._counters.copy()

    # --- plumbing -------------------------------------------------------------------

    def _reset_outbox(self) -> None:
        self._outbox: list[Outbound] = []
        self._committed: list[Block] = []
        self._fetch: FetchBlocks | None = None
        self._build: BuildProposal | None = None

    def _run(self, action: object) -> Ready:
        before = self._signer.last
        self._reset_outbox()
        action()  # type: ignore[operator]
        after = self._signer.last
        return Ready(
            last_signed=after if after is not before else None,
            messages=tuple(self._outbox),
            committed=tuple(self._committed),
            fetch=self._fetch,
            build=self._build,
        )

    def _broadcast(self, message: Message) -> None:
        self._outbox.append(Outbound(message.encode()))

    def _reject(self, reason: str, *, proposal: bool = False) -> None:
        self._counters.messages_rejected[reason] = (
            self._counters.messages_rejected.get(reason, 0) + 1
        )
        if proposal:
            self._counters.proposals_rejected[reason] = (
                self._counters.proposals_rejected.get(reason, 0) + 1
            )

    def _verify(self, signed: Signed) -> bool:
        token = (signed.signature, signed.payload_bytes)
        if token in self._verified:
            return True
        key = self._ctx.validators.get(signed.sender)
        if key is None or not signed.verify(self._chain_id, key):
            return False
        if len(self._verified) >= _VERIFIED_LIMIT:
            self._verified.clear()
        self._verified.add(token)
        return True

    def _validate_block(self, block: Block) -> None:
        verdict = self._block_verdicts.get(block.hash)
        if verdict is None:
            try:
                self._app.validate(block)
                verdict = ""
            except InvalidBlockError as exc:
                verdict = str(exc)
            self._block_verdicts[block.hash] = verdict
        if verdict:
            raise InvalidMessageError(verdict, reason="invalid_block")
        self._messages.blocks[block.hash] = block

    @property
    def _is_validator(self) -> bool:
        return self._identity in self._ctx.validators

    def _payload(self, step: Step, **fields: object) -> pb.Payload:
        return pb.Payload(
            step=step.value,
            height=self._ctx.height,
            round=self._round,
            sender=self._identity,
            **fields,
        )

    def _may_sign(self, step: Step) -> bool:
        return self._is_validator and self._signer.may_sign(self._ctx.height, self._round, step)

    # --- heights and rounds ---------------------------------------------------------

    def _start_height(self) -> None:
        head: ChainHead = self._app.head()
        height = head.height + 1
        validators = dict(self._app.validators_for(height))
        self._head = head
        self._ctx = HeightContext(
            self._chain_id, height, head.hash, validators, tuple(sorted(validators)), head.proposer
        )
        self._messages = HeightMessages(votes_per_sender=4 * (self._config.future_rounds + 2))
        self._verified: set[tuple[bytes, bytes]] = set()
        self._block_verdicts: dict[bytes, str] = {}
        self._round = 0
        self._accepted: Message | None = None
        self._prepared: Prepared | None = None
        self._active = False
        self._heartbeat = False
        self._decided = False
        self._height_ticks = 0
        self._timer = 0
        self._my_round_change: bytes | None = None
        self._rebroadcast_in = 0
        self._proposed_round: int | None = None
        self._pending_build: tuple[int, tuple[Message, ...]] | None = None
        last = self._signer.last
        if last is not None and last.signed.height == height:
            # Restart inside a height: resume at the round signed last, keep the prepared block.
            self._round = last.signed.round
            self._prepared = last.prepared
            if last.signed.step is Step.ROUND_CHANGE:
                self._my_round_change = self._round_change_message(last.signed).encode()
            if self._round > 0:
                self._activate()
        self._counters.height, self._counters.round = height, self._round
        for message in self._future.take(height):
            self._handle(message)
        self._fetch = self._fetch or self._sync.due(head.height)

    def _activate(self) -> None:
        if self._active:
            return
        self._active = True
        self._timer = self._config.round_timeout(self._round)
        if self._round == 0 and self._ctx.proposer(0) == self._identity:
            self._request_build(0, ())

    def _move_to_round(self, round: int) -> None:
        self._round = round
        self._accepted = None
        self._pending_build = None
        self._active = True
        self._timer = self._config.round_timeout(round)
        self._messages.drop_prepares_below(round)
        self._counters.round = round
        self._counters.round_changes += 1

    def _on_tick(self) -> None:
        if self._decided:
            return
        self._sync.tick()
        self._fetch = self._sync.due(self._head.height)
        self._height_ticks += 1
        if not self._active and self._height_ticks >= self._config.heartbeat_ticks:
            self._heartbeat = True
            self._activate()
        if not self._active:
            return
        self._timer -= 1
        if self._timer <= 0:
            if self._round < self._config.max_round:
                self._move_to_round(self._round + 1)
                self._send_round_change()
                self._try_propose_on_round_changes()
            else:
                self._timer = self._config.round_timeout(self._round)
        elif self._my_round_change is not None and self._accepted is None:
            self._rebroadcast_in -= 1
            if self._rebroadcast_in <= 0:
                self._outbox.append(Outbound(self._my_round_change))
                self._rebroadcast_in = self._config.rebroadcast_ticks

    def _round_change_message(self, signed: Signed) -> Message:
        prepared = self._prepared
        if prepared is None:
            return Message(signed)
        return Message(signed, block=prepared.block, prepares=prepared.prepares)

    def _send_round_change(self) -> None:
        if not self._may_sign(Step.ROUND_CHANGE):
            return
        prepared = self._prepared
        fields: dict[str, object] = {}
        if prepared is not None:
            fields = {
                "prepared": True,
                "prepared_round": prepared.round,
                "digest": prepared.block.hash,
            }
        signed = self._signer.sign(self._payload(Step.ROUND_CHANGE, **fields), prepared)
        message = self._round_change_message(signed)
        self._my_round_change = message.encode()
        self._rebroadcast_in = self._config.rebroadcast_ticks
        self._outbox.append(Outbound(self._my_round_change))
        self._messages.add_round_change(message)

    # --- proposing ------------------------------------------------------------------

    def _request_build(self, round: int, justification: tuple[Message, ...]) -> None:
        if self._proposed_round == round or not self._may_sign(Step.PROPOSAL):
            return
        self._proposed_round = round
        self._pending_build = (round, justification)
        self._build = BuildProposal(self._ctx.height, round, self._identity, self._head.hash)

    def _on_built(self, block: Block) -> None:
        pending = self._pending_build
        if (
            self._decided
            or pending is None
            or pending[0] != self._round
            or block.height != self._ctx.height
        ):
            self._reject("stale_build", proposal=True)
            return
        try:
            check_block_header(block, self._ctx, block.hash)
            if block.header.round != self._round:
                raise InvalidMessageError("built block names another round", reason="wrong_round")
            self._validate_block(block)
        except InvalidMessageError as exc:
            self._reject(exc.reason, proposal=True)
            return
        self._pending_build = None
        self._send_proposal(block, tuple(m.signed for m in pending[1]), ())

    def _send_proposal(
        self, block: Block, round_changes: tuple[Signed, ...], prepares: tuple[Signed, ...]
    ) -> None:
        if not self._may_sign(Step.PROPOSAL):
            return
        signed = self._signer.sign(self._payload(Step.PROPOSAL, digest=block.hash), self._prepared)
        message = Message(signed, block=block, round_changes=round_changes, prepares=prepares)
        self._counters.proposals_made += 1
        self._broadcast(message)
        self._accept(message)

    def _try_propose_on_round_changes(self) -> None:
        """``UponRoundChange`` for the new round's proposer with a quorum of ROUND-CHANGEs."""
        round = self._round
        if round == 0 or self._accepted is not None or self._proposed_round == round:
            return
        if self._ctx.proposer(round) != self._identity:
            return
        round_changes = self._messages.round_changes(round)
        if len(round_changes) < self._ctx.quorum:
            return
        best = highest_prepared([m.signed for m in round_changes])
        if best is None:
            self._request_build(round, tuple(round_changes))
            return
        carrier = next(m for m in round_changes if m.signed is best)
        if carrier.block is None:
            return
        try:
            self._validate_block(carrier.block)
        except InvalidMessageError as exc:
            self._reject(exc.reason, proposal=True)
            return
        self._proposed_round = round
        self._send_proposal(carrier.block, tuple(m.signed for m in round_changes), carrier.prepares)

    # --- receiving ------------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        try:
            message = Message.decode(data, chain_id=self._chain_id)
        except InvalidMessageError as exc:
            self._reject(exc.reason)
            return
        self._handle(message)

    def _handle(self, message: Message) -> None:
        signed = message.signed
        if signed.sender == self._identity:
            return
        if self._decided or signed.height > self._ctx.height:
            self._hold_for_later(message)
            return
        if signed.height < self._ctx.height:
            self._reject("old_height")
            return
        if self._messages.seen(signed):
            self._counters.duplicates += 1
            return
        proposal = signed.step is Step.PROPOSAL
        try:
            if signed.round > self._config.max_round:
                raise InvalidMessageError(f"round {signed.round} above the cap", reason="round_cap")
            check_signed(signed, self._ctx, self._verify)
            if proposal:
                self._on_proposal(message)
            elif signed.step is Step.ROUND_CHANGE:
                self._on_round_change(message)
            else:
                self._on_vote(signed)
        except InvalidMessageError as exc:
            self._reject(exc.reason, proposal=proposal)

    def _hold_for_later(self, message: Message) -> None:
        signed = message.signed
        current = self._ctx.height + (1 if self._decided else 0)
        if signed.height < current:
            self._reject("old_height")
            return
        if signed.sender not in self._ctx.validators or not self._verify(signed):
            self._reject("unverifiable_future")
            return
        # A validator speaking at a later height has committed the ones before it.
        self._sync.note(signed.sender, signed.height - 1)
        if signed.height > current + self._config.future_heights:
            self._reject("far_future")
        elif not self._future.add(message):
            self._reject("buffer_full")
        if not self._decided:
            self._fetch = self._fetch or self._sync.due(self._head.height)

    def _on_proposal(self, message: Message) -> None:
        """``UponProposal``: a justified proposal for this round (or a later one) is accepted."""
        signed = message.signed
        if signed.round < self._round:
            raise InvalidMessageError(expected_round(self._round, signed.round), reason="old_round")
        if signed.round == self._round and self._accepted is not None:
            raise InvalidMessageError("second proposal in one round", reason="equivocation")
        check_proposal(message, self._ctx, self._verify)
        if message.block is not None:
            self._validate_block(message.block)
        self._accept(message)

    def _accept(self, message: Message) -> None:
        signed, block = message.signed, message.block
        if block is None:
            return
        if signed.round > self._round:
            self._move_to_round(signed.round)
        if not self._active:
            self._active = True
            self._timer = self._config.round_timeout(self._round)
        self._accepted = message
        self._messages.blocks[block.hash] = block
        if self._may_sign(Step.PREPARE):
            prepare = self._signer.sign(
                self._payload(Step.PREPARE, digest=block.hash), self._prepared
            )
            self._broadcast(Message(prepare))
            self._messages.add_vote(prepare)
        self._check_prepared()
        self._check_committed(block.hash)

    def _on_vote(self, signed: Signed) -> None:
        """PREPARE and COMMIT: kept for this round and a few ahead (late COMMITs still count)."""
        if signed.round > self._round + self._config.future_rounds:
            raise InvalidMessageError(expected_round(self._round, signed.round), reason="round_cap")
        if signed.step is Step.PREPARE and signed.round < self._round:
            raise InvalidMessageError(expected_round(self._round, signed.round), reason="old_round")
        if signed.step is Step.COMMIT:
            key = self._ctx.validators[signed.sender]
            if not key.verify(
                signed.payload.commit_seal, seal_bytes(self._chain_id, signed.digest)
            ):
                raise InvalidMessageError(
                    f"commit seal of {signed.sender} does not verify", reason="bad_seal"
                )
        added = self._messages.add_vote(signed)
        if added is Added.EQUIVOCATION:
            raise InvalidMessageError(
                f"{signed.sender} voted twice in one round", reason="equivocation"
            )
        if added is Added.DUPLICATE:
            self._counters.duplicates += 1
            return
        if signed.step is Step.PREPARE:
            self._check_prepared()
        else:
            self._check_committed(signed.digest)

    def _check_prepared(self) -> None:
        """``UponPrepare``: a quorum of PREPAREs for the accepted block prepares it; COMMIT."""
        accepted = self._accepted
        if accepted is None or accepted.block is None:
            return
        if self._prepared is not None and self._prepared.round == self._round:
            return
        digest = accepted.block.hash
        prepares = self._messages.prepares(self._round, digest)
        if len(prepares) < self._ctx.quorum:
            return
        self._prepared = Prepared(self._round, accepted.block, tuple(prepares[: self._ctx.quorum]))
        if self._may_sign(Step.COMMIT):
            payload = self._payload(
                Step.COMMIT, digest=digest, commit_seal=self._signer.seal(digest)
            )
            commit = self._signer.sign(payload, self._prepared)
            self._counters.seals_signed += 1
            self._broadcast(Message(commit))
            self._messages.add_vote(commit)
        self._check_committed(digest)

    def _check_committed(self, digest: bytes) -> None:
        """``UponCommit``: a quorum of valid seals on a known block makes it final."""
        commits = self._messages.commits(digest)
        if len(commits) < self._ctx.quorum or self._decided:
            return
        block = self._messages.blocks.get(digest)
        if block is None:
            for sender in commits:
                self._sync.note(sender, self._ctx.height)
            self._fetch = self._fetch or self._sync.due(self._head.height)
            return
        seals = tuple(
            Seal(sender, commits[sender].payload.commit_seal) for sender in sorted(commits)
        )
        self._decide(block.with_seals(seals), synced=False)

    def _on_round_change(self, message: Message) -> None:
        """``UponRoundChange``: f+1 for higher rounds move us up; a quorum lets the proposer act."""
        signed = message.signed
        if signed.round < self._round:
            raise InvalidMessageError(expected_round(self._round, signed.round), reason="old_round")
        check_round_change(message, self._ctx, self._verify)
        if self._messages.add_round_change(message) is Added.EQUIVOCATION:
            raise InvalidMessageError(
                f"{signed.sender} sent two ROUND-CHANGEs for one round", reason="equivocation"
            )
        higher = sorted(
            (r for r in self._messages.highest_rounds().values() if r > self._round), reverse=True
        )
        weak = weak_quorum(len(self._ctx.validators))
        if len(higher) >= weak:
            # The highest round that f+1 validators (so at least one honest) have reached.
            self._move_to_round(higher[weak - 1])
            self._send_round_change()
        self._try_propose_on_round_changes()

    # --- deciding -------------------------------------------------------------------

    def _on_synced(self, block: Block) -> None:
        if self._decided or block.height != self._ctx.height:
            self._reject("sync_out_of_order")
            return
        try:
            if block.header.parent_hash != self._head.hash:
                raise InvalidBlockError(
                    "synced block does not extend the head", field="header.parent_hash"
                )
            verify_seals(block, self._ctx.validators)
            self._app.validate(block)
        except QuorumError:
            self._reject("bad_seals")
            return
        except InvalidBlockError:
            self._reject("invalid_block")
            return
        self._sync.progressed()
        self._decide(block, synced=True)

    def _decide(self, block: Block, *, synced: bool) -> None:
        self._decided = True
        self._committed.append(block)
        self._counters.blocks_committed += 1
        self._counters.blocks_synced += synced
        self._counters.heartbeat_blocks += self._heartbeat and not synced


def expected_round(current: int, came: int) -> str:
    return f"expected round {current} or later, got {came}"
