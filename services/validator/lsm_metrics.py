"""A validator's metrics of the liquidity-saving mechanism and its queues.

Counted once per committed block from what the execution reports (``OffsettingRun``
and the block's queue settlements), never per transaction; the queued value is summed
from the state at scrape time. The mechanism's run time is the histogram
``straits_lsm_run_seconds`` (``BlockObserver``), timed by the stopwatch the validator
hands its chain (the ledger reads no clock itself).
"""

from __future__ import annotations

from straits.ledger.v1 import receipt_pb2 as receipt_pb

from ledger.block import Block
from ledger.execute import Execution
from ledger.state import State
from services.common.metrics import Families


class LiquidityObserver:
    """Counts the mechanism's runs and what they released, and queue settlements."""

    def __init__(self) -> None:
        self.runs = 0
        self.considered = 0
        self.released = 0
        self.released_value = 0
        self.queue_settled = 0

    def on_commit(self, block: Block, execution: Execution) -> None:
        run = execution.offsetting
        if run is not None:
            self.runs += 1
            self.considered += run.considered
            self.released += run.released
            self.released_value += run.released_value
        self.queue_settled += sum(
            1 for s in execution.settlements if s.outcome == receipt_pb.OUTCOME_SETTLED
        )

    def read(self, f: Families, state: State) -> None:
        f.counter(
            "straits_lsm_runs_total",
            "Blocks in which the liquidity-saving mechanism ran.",
            self.runs,
        )
        f.counter(
            "straits_lsm_considered_transfers_total",
            "Eligible queued transfers the mechanism's runs looked at.",
            self.considered,
        )
        f.counter(
            "straits_lsm_released_transfers_total",
            "Queued transfers settled by offsetting.",
            self.released,
        )
        f.counter(
            "straits_lsm_released_minor_units_total",
            "Value of the queued transfers settled by offsetting, in minor units.",
            self.released_value,
        )
        f.counter(
            "straits_ledger_queue_settled_transfers_total",
            "Queued transfers that settled (ordinary queue pass or offsetting).",
            self.queue_settled,
        )
        f.gauge(
            "straits_ledger_queued_minor_units",
            "Value waiting in payers' queues, in minor units.",
            sum(entry.amount for queue in state.queues.values() for entry in queue),
        )
