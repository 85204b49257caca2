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

from ledger.block import Block, KnownTransactions, Seal
from ledger.consensus.application import Application
from ledger.consensus.config import ConsensusConfig
from ledger.consensus.height import HeightState
from ledger.consensus.justification import (
    HeightContext,
    check_block_header,
    check_proposal,
    check_round_change,
    check_signed,
    check_synced,
    check_vote,
    expected_round,
    highest_prepared,
)
from ledger.consensus.messages import Message, Signed, Step
from ledger.consensus.ready import BuildProposal, Counters, Outbound, Ready, ReadyBuilder
from ledger.consensus.round_state import Added, FutureMessages, HeightMessages
from ledger.consensus.signer import LastSigned, Prepared, Signer
from ledger.consensus.sync import SyncTracker
from ledger.errors import InvalidMessageError
from ledger.keys import PrivateKey
from ledger.quorum import weak_quorum


class Engine:
    def __init__(
        self,
        *,
        application: Application,
        identity: str,
        key: PrivateKey,
        config: ConsensusConfig | None = None,
        last_signed: LastSigned | None = None,
        abstain_through: int = 0,
        known_transactions: KnownTransactions | None = None,
    ) -> None:
        self._app = application
        # Lends a proposal's transactions already decoded at admission (the mempool).
        self._known = known_transactions
        self._chain_id = application.chain_id
        self._identity = identity
        self._config = config or ConsensusConfig()
        self._signer = Signer(self._chain_id, identity, key, last_signed, abstain_through)
        self._counters = Counters()
        self._sync = SyncTracker(self._config)
        self._future = FutureMessages(
            limit=self._config.max_buffered, per_sender=self._config.max_buffered_per_sender
        )
        self._out = ReadyBuilder()

    # --- events ---------------------------------------------------------------------

    def start(self) -> Ready:
        return self._run(self._start_height)

    def advance(self) -> Ready:
        """The committed blocks of the last ``Ready`` are applied: decide the next height."""
        return self._run(lambda: self._h.decided and self._start_height())

    def tick(self) -> Ready:
        return self._run(self._on_tick)

    def receive(self, data: bytes) -> Ready:
        return self._run(lambda: self._receive(data))

    def receive_message(self, message: Message) -> Ready:
        """For a runtime that decoded the bytes already (``Message.decode``), e.g. once for all."""
        return self._run(lambda: self._handle(message))

    def transactions_available(self) -> Ready:
        return self._run(lambda: self._h.decided or self._activate())

    def propose(self, block: Block) -> Ready:
        return self._run(lambda: self._on_built(block))

    def synced(self, block: Block) -> Ready:
        return self._run(lambda: self._on_synced(block))

    # --- read-only views ------------------------------------------------------------

    @property
    def height(self) -> int:
        return self._h.ctx.height

    @property
    def round(self) -> int:
        return self._h.round

    @property
    def last_signed(self) -> LastSigned | None:
        return self._signer.last

    @property
    def abstain_through(self) -> int:
        """Heights at or below this one this validator signs nothing at (see ``Signer``)."""
        return self._signer.abstain_through

    def abstain_only_through(self, height: int) -> None:
        """Sign again above ``height``: the runtime has learnt the network's head.

        A plain assignment: the runtime may call it from another thread, and the next
        signing decision reads it."""
        self._signer.abstain_through = height

    @property
    def prepared(self) -> Prepared | None:
        """The block this validator prepared at the current height, with its certificate."""
        return self._h.prepared

    @property
    def counters(self) -> Counters:
        return self._counters.copy()

    # --- plumbing -------------------------------------------------------------------

    def _run(self, action: object) -> Ready:
        before = self._signer.last
        self._out = ReadyBuilder()
        action()  # type: ignore[operator]
        after = self._signer.last
        return self._out.ready(after if after is not before else None)

    def _broadcast(self, message: Message) -> None:
        self._out.messages.append(Outbound(message.encode()))

    def _reject(self, reason: str, *, proposal: bool = False) -> None:
        for tally in (self._counters.messages_rejected, self._counters.proposals_rejected):
            tally[reason] = tally.get(reason, 0) + 1
            if not proposal:
                return

    @property
    def _is_validator(self) -> bool:
        return self._identity in self._h.ctx.validators

    def _payload(self, step: Step, **fields: object) -> pb.Payload:
        return pb.Payload(
            step=step.value,
            height=self._h.ctx.height,
            round=self._h.round,
            sender=self._identity,
            **fields,
        )

    def _may_sign(self, step: Step) -> bool:
        return self._is_validator and self._signer.may_sign(self._h.ctx.height, self._h.round, step)

    # --- heights and rounds ---------------------------------------------------------

    def _start_height(self) -> None:
        head = self._app.head()
        height = head.height + 1
        validators = dict(self._app.validators_for(height))
        ctx = HeightContext(
            self._chain_id, height, head.hash, validators, tuple(sorted(validators)), head.proposer
        )
        votes = 4 * (self._config.future_rounds + 2)
        self._h = HeightState(head, ctx, HeightMessages(votes_per_sender=votes))
        last = self._signer.last
        if last is not None and last.signed.height == height:
            # Restart inside a height: resume at the round signed last, keep the prepared block.
            self._h.round = last.signed.round
            self._h.prepared = last.prepared
            if last.signed.step is Step.ROUND_CHANGE:
                self._h.my_round_change = self._round_change_message(last.signed).encode()
            if self._h.round > 0:
                self._activate()
        self._counters.height, self._counters.round = height, self._h.round
        for message in self._future.take(height):
            self._handle(message)
        self._out.fetch = self._out.fetch or self._sync.due(head.height)

    def _activate(self) -> None:
        if self._h.active:
            return
        self._h.active = True
        self._h.timer = self._config.round_timeout(self._h.round)
        if self._h.round == 0 and self._h.ctx.proposer(0) == self._identity:
            self._request_build(0, ())

    def _move_to_round(self, round: int) -> None:
        self._h.round = round
        self._h.accepted = None
        self._h.pending_build = None
        self._h.active = True
        self._h.timer = self._config.round_timeout(round)
        self._h.messages.drop_prepares_below(round)
        self._counters.round = round
        self._counters.round_changes += 1

    def _on_tick(self) -> None:
        if self._h.decided:
            return
        self._sync.tick()
        self._out.fetch = self._sync.due(self._h.head.height)
        self._h.ticks += 1
        if not self._h.active and self._h.ticks >= self._config.heartbeat_ticks:
            self._h.heartbeat = True
            self._activate()
        if not self._h.active:
            return
        self._h.timer -= 1
        if self._h.timer <= 0:
            if self._h.round < self._config.max_round:
                self._move_to_round(self._h.round + 1)
                self._send_round_change()
                self._try_propose_on_round_changes()
            else:
                self._h.timer = self._config.round_timeout(self._h.round)
        elif self._h.my_round_change is not None and self._h.accepted is None:
            self._h.rebroadcast_in -= 1
            if self._h.rebroadcast_in <= 0:
                self._out.messages.append(Outbound(self._h.my_round_change))
                self._h.rebroadcast_in = self._config.rebroadcast_ticks

    def _round_change_message(self, signed: Signed) -> Message:
        prepared = self._h.prepared
        if prepared is None:
            return Message(signed)
        return Message(signed, block=prepared.block, prepares=prepared.prepares)

    def _send_round_change(self) -> None:
        if not self._may_sign(Step.ROUND_CHANGE):
            return
        prepared = self._h.prepared
        fields: dict[str, object] = {}
        if prepared is not None:
            fields = {
                "prepared": True,
                "prepared_round": prepared.round,
                "digest": prepared.block.hash,
            }
        signed = self._signer.sign(self._payload(Step.ROUND_CHANGE, **fields), prepared)
        message = self._round_change_message(signed)
        self._h.my_round_change = message.encode()
        self._h.rebroadcast_in = self._config.rebroadcast_ticks
        self._out.messages.append(Outbound(self._h.my_round_change))
        self._h.messages.add_round_change(message)

    # --- proposing ------------------------------------------------------------------

    def _request_build(self, round: int, justification: tuple[Message, ...]) -> None:
        if self._h.proposed_round == round or not self._may_sign(Step.PROPOSAL):
            return
        self._h.proposed_round = round
        self._h.pending_build = (round, justification)
        self._out.build = BuildProposal(
            self._h.ctx.height, round, self._identity, self._h.head.hash
        )

    def _on_built(self, block: Block) -> None:
        pending = self._h.pending_build
        if (
            self._h.decided
            or pending is None
            or pending[0] != self._h.round
            or block.height != self._h.ctx.height
        ):
            self._reject("stale_build", proposal=True)
            return
        try:
            check_block_header(block, self._h.ctx, block.hash)
            if block.header.round != self._h.round:
                raise InvalidMessageError("built block names another round", reason="wrong_round")
            self._h.validate_block(block, self._app)
        except InvalidMessageError as exc:
            self._reject(exc.reason, proposal=True)
            return
        self._h.pending_build = None
        self._send_proposal(block, tuple(m.signed for m in pending[1]), ())

    def _send_proposal(
        self, block: Block, round_changes: tuple[Signed, ...], prepares: tuple[Signed, ...]
    ) -> None:
        if not self._may_sign(Step.PROPOSAL):
            return
        signed = self._signer.sign(
            self._payload(Step.PROPOSAL, digest=block.hash), self._h.prepared
        )
        message = Message(signed, block=block, round_changes=round_changes, prepares=prepares)
        self._counters.proposals_made += 1
        self._broadcast(message)
        self._accept(message)

    def _try_propose_on_round_changes(self) -> None:
        """``UponRoundChange`` for the new round's proposer with a quorum of ROUND-CHANGEs."""
        round = self._h.round
        if round == 0 or self._h.accepted is not None or self._h.proposed_round == round:
            return
        if self._h.ctx.proposer(round) != self._identity:
            return
        round_changes = self._h.messages.round_changes(round)
        if len(round_changes) < self._h.ctx.quorum:
            return
        best = highest_prepared([m.signed for m in round_changes])
        if best is None:
            self._request_build(round, tuple(round_changes))
            return
        carrier = next(m for m in round_changes if m.signed is best)
        if carrier.block is None:
            return
        try:
            self._h.validate_block(carrier.block, self._app)
        except InvalidMessageError as exc:
            self._reject(exc.reason, proposal=True)
            return
        self._h.proposed_round = round
        self._send_proposal(carrier.block, tuple(m.signed for m in round_changes), carrier.prepares)

    # --- receiving ------------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        try:
            message = Message.decode(data, chain_id=self._chain_id, known=self._known)
        except InvalidMessageError as exc:
            self._reject(exc.reason)
            return
        self._handle(message)

    def _handle(self, message: Message) -> None:
        signed = message.signed
        if signed.sender == self._identity:
            return
        if self._h.decided or signed.height > self._h.ctx.height:
            self._hold_for_later(message)
            return
        if signed.height < self._h.ctx.height:
            self._reject("old_height")
            return
        if self._h.messages.seen(signed):
            self._counters.duplicates += 1
            return
        proposal = signed.step is Step.PROPOSAL
        try:
            if signed.round > self._config.max_round:
                raise InvalidMessageError(f"round {signed.round} above the cap", reason="round_cap")
            check_signed(signed, self._h.ctx, self._h.verify)
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
        current = self._h.ctx.height + (1 if self._h.decided else 0)
        if signed.height < current:
            self._reject("old_height")
            return
        if signed.sender not in self._h.ctx.validators or not self._h.verify(signed):
            self._reject("unverifiable_future")
            return
        # A validator speaking at a later height has committed the ones before it.
        self._sync.note(signed.sender, signed.height - 1)
        if signed.height > current + self._config.future_heights:
            self._reject("far_future")
        elif not self._future.add(message):
            self._reject("buffer_full")
        if not self._h.decided:
            self._out.fetch = self._out.fetch or self._sync.due(self._h.head.height)

    def _on_proposal(self, message: Message) -> None:
        """``UponProposal``: a justified proposal for this round (or a later one) is accepted."""
        signed = message.signed
        if signed.round < self._h.round:
            raise InvalidMessageError(
                expected_round(self._h.round, signed.round), reason="old_round"
            )
        if signed.round == self._h.round and self._h.accepted is not None:
            raise InvalidMessageError("second proposal in one round", reason="equivocation")
        check_proposal(message, self._h.ctx, self._h.verify)
        if message.block is not None:
            self._h.validate_block(message.block, self._app)
        self._accept(message)

    def _accept(self, message: Message) -> None:
        signed, block = message.signed, message.block
        if block is None:
            return
        if signed.round > self._h.round:
            self._move_to_round(signed.round)
        if not self._h.active:
            self._h.active = True
            self._h.timer = self._config.round_timeout(self._h.round)
        self._h.accepted = message
        self._h.messages.blocks[block.hash] = block
        if self._may_sign(Step.PREPARE):
            prepare = self._signer.sign(
                self._payload(Step.PREPARE, digest=block.hash), self._h.prepared
            )
            self._broadcast(Message(prepare))
            self._h.messages.add_vote(prepare)
        self._check_prepared()
        self._check_committed(block.hash)

    def _on_vote(self, signed: Signed) -> None:
        """PREPARE and COMMIT: kept for this round and a few ahead (late COMMITs still count)."""
        check_vote(signed, self._h.ctx, self._h.round, self._config.future_rounds)
        added = self._h.messages.add_vote(signed)
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
        accepted = self._h.accepted
        if accepted is None or accepted.block is None:
            return
        if self._h.prepared is not None and self._h.prepared.round == self._h.round:
            return
        digest = accepted.block.hash
        prepares = self._h.messages.prepares(self._h.round, digest)
        if len(prepares) < self._h.ctx.quorum:
            return
        self._h.prepared = Prepared(
            self._h.round, accepted.block, tuple(prepares[: self._h.ctx.quorum])
        )
        if self._may_sign(Step.COMMIT):
            payload = self._payload(
                Step.COMMIT, digest=digest, commit_seal=self._signer.seal(digest)
            )
            commit = self._signer.sign(payload, self._h.prepared)
            self._counters.seals_signed += 1
            self._broadcast(Message(commit))
            self._h.messages.add_vote(commit)
        self._check_committed(digest)

    def _check_committed(self, digest: bytes) -> None:
        """``UponCommit``: a quorum of valid seals on a known block makes it final."""
        commits = self._h.messages.commits(digest)
        if len(commits) < self._h.ctx.quorum or self._h.decided:
            return
        block = self._h.messages.blocks.get(digest)
        if block is None:
            for sender in commits:
                self._sync.note(sender, self._h.ctx.height)
            self._out.fetch = self._out.fetch or self._sync.due(self._h.head.height)
            return
        seals = tuple(
            Seal(sender, commits[sender].payload.commit_seal) for sender in sorted(commits)
        )
        self._decide(block.with_seals(seals), synced=False)

    def _on_round_change(self, message: Message) -> None:
        """``UponRoundChange``: f+1 for higher rounds move us up; a quorum lets the proposer act."""
        signed = message.signed
        if signed.round < self._h.round:
            raise InvalidMessageError(
                expected_round(self._h.round, signed.round), reason="old_round"
            )
        check_round_change(message, self._h.ctx, self._h.verify)
        if self._h.messages.add_round_change(message) is Added.EQUIVOCATION:
            raise InvalidMessageError(
                f"{signed.sender} sent two ROUND-CHANGEs for one round", reason="equivocation"
            )
        higher = sorted(
            (r for r in self._h.messages.highest_rounds().values() if r > self._h.round),
            reverse=True,
        )
        weak = weak_quorum(len(self._h.ctx.validators))
        if len(higher) >= weak:
            # The highest round that f+1 validators (so at least one honest) have reached.
            self._move_to_round(higher[weak - 1])
            self._send_round_change()
        self._try_propose_on_round_changes()

    # --- deciding -------------------------------------------------------------------

    def _on_synced(self, block: Block) -> None:
        if self._h.decided or block.height != self._h.ctx.height:
            self._reject("sync_out_of_order")
            return
        try:
            check_synced(block, self._h.ctx, self._app)
        except InvalidMessageError as exc:
            self._reject(exc.reason)
            return
        self._sync.progressed()
        self._decide(block, synced=True)

    def _decide(self, block: Block, *, synced: bool) -> None:
        self._h.decided = True
        self._out.committed.append(block)
        self._counters.blocks_committed += 1
        self._counters.blocks_synced += synced
        self._counters.heartbeat_blocks += self._h.heartbeat and not synced
