"""What the engine asks the runtime to do, and the counters it keeps for metrics.

``Runner`` (``runner.py``) carries a ``Ready`` out, in the order safety needs:
persist ``last_signed`` (before any message leaves), send ``messages``, commit the
``committed`` blocks, start the ``fetch`` and the ``build``; then, if anything was
committed, call ``Engine.advance()`` and carry out its ``Ready`` the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.block import Block
from ledger.consensus.signer import LastSigned


@dataclass(frozen=True, slots=True)
class Outbound:
    """Encoded consensus message; ``to`` is a validator id, or None for every other validator."""

    data: bytes
    to: str | None = None


@dataclass(frozen=True, slots=True)
class FetchBlocks:
    """Committed blocks [from_height, to_height] wanted; ``peers`` in the order to ask them."""

    from_height: int
    to_height: int
    peers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BuildProposal:
    """Build a block for ``height``: header.round = ``round``, header.proposer = ``proposer``."""

    height: int
    round: int
    proposer: str
    parent_hash: bytes


@dataclass(frozen=True)
class Ready:
    last_signed: LastSigned | None = None
    messages: tuple[Outbound, ...] = ()
    committed: tuple[Block, ...] = ()
    fetch: FetchBlocks | None = None
    build: BuildProposal | None = None


class ReadyBuilder:
    """What one event produced, gathered while the engine handles it."""

    def __init__(self) -> None:
        self.messages: list[Outbound] = []
        self.committed: list[Block] = []
        self.fetch: FetchBlocks | None = None
        self.build: BuildProposal | None = None

    def ready(self, last_signed: LastSigned | None) -> Ready:
        return Ready(
            last_signed, tuple(self.messages), tuple(self.committed), self.fetch, self.build
        )


@dataclass
class Counters:
    """Plain numbers for the metrics exporter; ``Engine.counters`` hands out a copy."""

    height: int = 0
    round: int = 0
    round_changes: int = 0
    proposals_made: int = 0
    proposals_rejected: dict[str, int] = field(default_factory=dict)
    messages_rejected: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    seals_signed: int = 0
    blocks_committed: int = 0
    blocks_synced: int = 0
    heartbeat_blocks: int = 0

    def copy(self) -> Counters:
        return Counters(
            **{
                **self.__dict__,
                "proposals_rejected": dict(self.proposals_rejected),
                "messages_rejected": dict(self.messages_rejected),
            }
        )
