"""Catch-up: which committed heights peers have shown, and when to ask them for blocks.

A validly signed message for a later height, or a quorum of COMMITs for a block
this node never saw, shows that its senders have committed further. The tracker
turns that into one ``FetchBlocks`` at a time, retried with the peers rotated
when nothing arrives within ``sync_retry_ticks`` (a lying peer costs one retry
period), and asked again at once after every block that does arrive. Blocks
that come back are checked like any other: seals against the validator set of
their height, then the application's rules (``Engine.synced``).
"""

from __future__ import annotations

from ledger.consensus.config import ConsensusConfig
from ledger.consensus.ready import FetchBlocks


class SyncTracker:
    def __init__(self, config: ConsensusConfig) -> None:
        self._config = config
        self._peer_heights: dict[str, int] = {}
        self._idle_ticks = config.sync_retry_ticks
        self._attempts = 0

    def note(self, peer: str, committed_height: int) -> None:
        if committed_height > self._peer_heights.get(peer, 0):
            self._peer_heights[peer] = committed_height

    def behind(self, head_height: int) -> bool:
        return any(h > head_height for h in self._peer_heights.values())

    def progressed(self) -> None:
        """A block arrived: the next request may leave at once."""
        self._idle_ticks = self._config.sync_retry_ticks
        self._attempts = 0

    def tick(self) -> None:
        self._idle_ticks += 1

    def due(self, head_height: int) -> FetchBlocks | None:
        ahead = sorted((-h, peer) for peer, h in self._peer_heights.items() if h > head_height)
        if not ahead or self._idle_ticks < self._config.sync_retry_ticks:
            return None
        peers = [peer for _, peer in ahead]
        shift = self._attempts % len(peers)
        self._idle_ticks = 0
        self._attempts += 1
        target = min(-ahead[0][0], head_height + self._config.sync_batch)
        return FetchBlocks(head_height + 1, target, tuple(peers[shift:] + peers[:shift]))
