"""What the engine needs from the ledger, and nothing of its rules.

The engine asks the application only about the chain it has committed: the head,
the validator set of the next height, and whether a proposed block is valid on
top of the head. All three are pure and deterministic; the runtime applies
committed blocks between ``Ready`` values (see ``Engine.advance``), so the answers
change only when the engine has been told to move on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ledger.block import Block
from ledger.keys import PublicKey


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last committed block: height 0 is genesis (no proposer)."""

    height: int
    hash: bytes
    proposer: str


class Application(Protocol):
    @property
    def chain_id(self) -> str: ...

    def head(self) -> ChainHead: ...

    def validators_for(self, height: int) -> Mapping[str, PublicKey]:
        """The set that seals ``height``; asked only for head().height + 1."""
        ...

    def validate(self, block: Block) -> None:
        """Raise ``InvalidBlockError`` unless ``block`` is valid on the head (seals aside)."""
        ...
