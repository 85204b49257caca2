"""Timers and limits of the consensus engine, in ticks and counts (no clock inside).

Round timers double from ``round_ticks`` and stop growing at ``max_round_ticks``:
a long outage never leaves the network waiting hours for one round, and because a
validator moves up a round only on its own timer or on f+1 signed ROUND-CHANGEs
(never on a single message), the capped timer cannot start a round-change storm:
while stuck, each validator sends at most one new ROUND-CHANGE per timer period
and repeats its latest one every ``rebroadcast_ticks``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.errors import StraitsError, expected

# Rounds are uint32 on the wire; a cap far below keeps arithmetic and memory small
# while lasting longer than any outage (2**20 capped rounds is years of ticks).
MAX_ROUND = 1 << 20


class ConfigError(StraitsError):
    code = "bad_consensus_config"


@dataclass(frozen=True)
class ConsensusConfig:
    round_ticks: int = 4  # round 0 timer; round r waits round_ticks * 2**r, capped
    max_round_ticks: int = 64
    heartbeat_ticks: int = 200  # an idle network still commits an empty block this often
    rebroadcast_ticks: int = 8  # repeat the latest ROUND-CHANGE this often while stuck
    max_round: int = MAX_ROUND
    future_heights: int = 2  # messages this many heights ahead are buffered, further dropped
    future_rounds: int = 8  # PREPARE/COMMIT this many rounds ahead are kept, further dropped
    max_buffered: int = 1024  # future-height messages held in all
    max_buffered_per_sender: int = 64
    sync_batch: int = 64  # blocks asked for in one fetch
    sync_retry_ticks: int = 16  # ask again (another peer) when a fetch brought nothing

    def __post_init__(self) -> None:
        for name in (
            "round_ticks",
            "heartbeat_ticks",
            "rebroadcast_ticks",
            "sync_batch",
            "sync_retry_ticks",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(
                    expected("a positive tick count", getattr(self, name)), field=name
                )
        if self.max_round_ticks < self.round_ticks:
            raise ConfigError(
                expected(f"at least round_ticks={self.round_ticks}", self.max_round_ticks),
                field="max_round_ticks",
            )
        if not 1 <= self.max_round <= MAX_ROUND:
            raise ConfigError(expected(f"1..{MAX_ROUND}", self.max_round), field="max_round")

    def round_timeout(self, round: int) -> int:
        """Ticks to wait in ``round`` before moving to the next one."""
        if round >= self.max_round_ticks.bit_length():
            return self.max_round_ticks
        return min(self.round_ticks << round, self.max_round_ticks)
