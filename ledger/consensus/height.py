"""The height being decided: its context, the round reached, and what was seen and signed.

A fresh ``HeightState`` starts each height, so nothing of one height leaks into
the next. It also keeps the two verdict caches of the height: signatures checked
(a certificate carried by many messages is checked once) and blocks validated by
the application (a re-proposed block is executed once).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.block import Block
from ledger.consensus.application import Application, ChainHead
from ledger.consensus.justification import HeightContext
from ledger.consensus.messages import Message, Signed
from ledger.consensus.round_state import HeightMessages
from ledger.consensus.signer import Prepared
from ledger.errors import InvalidBlockError, InvalidMessageError

# Distinct valid signatures remembered in one height; past this the cache restarts.
VERIFIED_LIMIT = 8192


@dataclass
class HeightState:
    head: ChainHead
    ctx: HeightContext
    messages: HeightMessages
    round: int = 0
    accepted: Message | None = None  # the proposal accepted in this round
    prepared: Prepared | None = None  # the latest block prepared at this height
    active: bool = False  # round timers run (transactions wait, heartbeat due, or a round moved)
    heartbeat: bool = False  # activated by the heartbeat, not by transactions
    decided: bool = False  # a block is committed; waiting for ``Engine.advance``
    ticks: int = 0
    timer: int = 0
    my_round_change: bytes | None = None  # for rebroadcast while stuck
    rebroadcast_in: int = 0
    proposed_round: int | None = None
    pending_build: tuple[int, tuple[Message, ...]] | None = None
    verified: set[tuple[bytes, bytes]] = field(default_factory=set)
    block_verdicts: dict[bytes, str] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return self.ctx.height

    def verify(self, signed: Signed) -> bool:
        token = (signed.signature, signed.payload_bytes)
        if token in self.verified:
            return True
        key = self.ctx.validators.get(signed.sender)
        if key is None or not signed.verify(self.ctx.chain_id, key):
            return False
        if len(self.verified) >= VERIFIED_LIMIT:
            self.verified.clear()
        self.verified.add(token)
        return True

    def validate_block(self, block: Block, application: Application) -> None:
        """Application validity, once per block; a valid block becomes known for COMMITs."""
        verdict = self.block_verdicts.get(block.hash)
        if verdict is None:
            try:
                application.validate(block)
                verdict = ""
            except InvalidBlockError as exc:
                verdict = str(exc)
            self.block_verdicts[block.hash] = verdict
        if verdict:
            raise InvalidMessageError(verdict, reason="invalid_block")
        self.messages.blocks[block.hash] = block
