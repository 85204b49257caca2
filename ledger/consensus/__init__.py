"""QBFT consensus as a deterministic state machine (see docs/consensus.md).

``Engine`` takes events and returns ``Ready`` values; ``Runner`` carries them out
through interfaces for the store, the transport and the chain; the ledger is
reached only through the ``Application`` protocol; the runtime in ``services/``
and the simulation in ``tests/consensus/`` supply the I/O.
"""

from ledger.consensus.application import Application, ChainHead
from ledger.consensus.config import ConsensusConfig
from ledger.consensus.engine import Engine
from ledger.consensus.messages import Message, Signed, Step
from ledger.consensus.ready import BuildProposal, Counters, FetchBlocks, Outbound, Ready
from ledger.consensus.runner import Committer, Proposer, RecordStore, Runner, Transport
from ledger.consensus.signer import LastSigned, Prepared

__all__ = [
    "Application",
    "BuildProposal",
    "ChainHead",
    "Committer",
    "ConsensusConfig",
    "Counters",
    "Engine",
    "FetchBlocks",
    "LastSigned",
    "Message",
    "Outbound",
    "Prepared",
    "Proposer",
    "Ready",
    "RecordStore",
    "Runner",
    "Signed",
    "Step",
    "Transport",
]
