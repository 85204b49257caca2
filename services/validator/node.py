"""A validator process: the composition root that wires the ledger to the network.

``ValidatorNode(config)`` only assigns; ``start()`` opens the store (resuming from
its SQLite file), starts the verifier pool, the peer links, the gRPC server and the
node loop; ``stop()`` undoes them in reverse, letting in-flight calls finish.
Blocks are written to the store inside the node loop before anything announces
them, so a block a client has been told of survives a crash.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from straits.consensus.v1 import consensus_service_pb2_grpc as consensus_service_grpc
from straits.validator.v1 import validator_pb2_grpc as validator_grpc

from ledger import genesis as genesis_file
from ledger.block import Block
from ledger.consensus import ConsensusConfig, Engine, LastSigned
from ledger.errors import StoreError
from ledger.genesis import Parameters
from ledger.keys import PrivateKey
from ledger.state import State
from ledger.verifier import BatchVerifier, available_cores
from services.common.config import NodeConfig
from services.common.server import Service, create_server
from services.validator.abstention import EVERY_HEIGHT, Abstention
from services.validator.admission import Admitter
from services.validator.admitted import AdmittedFirst
from services.validator.commits import CommitFeed
from services.validator.intake import Intake
from services.validator.loop import Driver, Timing
from services.validator.membership import membership_check
from services.validator.mempool import Mempool
from services.validator.metrics import start_validator_metrics
from services.validator.peers import Peers
from services.validator.servicers import ConsensusServicer, ValidatorServicer
from services.validator.signature_processes import ProcessEngine
from services.validator.store_check import open_checked

log = logging.getLogger(__name__)

VALIDATOR_SERVICE = "straits.validator.v1.ValidatorService"
CONSENSUS_SERVICE = "straits.consensus.v1.ConsensusService"


@dataclass(frozen=True)
class ValidatorSettings:
    tick_seconds: float = 0.05
    # A few blocks' worth: past that a validator pushes back rather than queue work
    # that would only add latency (and starve consensus of CPU).
    mempool_capacity: int = 10_000
    intake_capacity: int = 4_000
    grace_seconds: float = 2.0
    # Signature worker processes, one per core the node may use, at most this many: each
    # is about 27 MB, and a container sees every core of its host whatever its CPU limit.
    max_signature_workers: int = 4


def consensus_config(parameters: Parameters, tick_seconds: float) -> ConsensusConfig:
    """The genesis timers, in milliseconds, as the engine's ticks."""

    def ticks(ms: int) -> int:
        return max(1, math.ceil(ms / 1000 / tick_seconds))

    round_ticks = ticks(parameters.round_timeout_ms)
    return ConsensusConfig(
        round_ticks=round_ticks,
        max_round_ticks=max(round_ticks, ticks(parameters.max_round_timeout_ms)),
        heartbeat_ticks=ticks(parameters.heartbeat_ms),
        rebroadcast_ticks=round_ticks,
        sync_retry_ticks=round_ticks,
    )


class ValidatorNode:
    def __init__(self, config: NodeConfig, settings: ValidatorSettings | None = None) -> None:
        self.config = config
        self.settings = settings or ValidatorSettings()
        self.port = 0
        self._running = False

    def start(self) -> int:
        config, settings = self.config, self.settings
        genesis = genesis_file.load(config.genesis)
        key = PrivateKey.load(config.ledger_key)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        # Each verifier thread hands its chunks to a worker process: no GIL between them
        # and the node's Python (services/validator/signature_processes.py).
        self.verifier = verifier = BatchVerifier(
            workers=min(available_cores(), settings.max_signature_workers), engines=ProcessEngine
        ).start()
        self.mempool = mempool = Mempool(settings.mempool_capacity)
        # Blocks reuse admission's checks: a signature is checked once, not twice.
        self.block_signatures = AdmittedFirst(mempool, verifier)
        try:
            self.store, self.chain = store, chain = open_checked(
                config.id, config.data_dir / "ledger.db", State.genesis(genesis),
                self.block_signatures, stopwatch=time.perf_counter,
            )
        except StoreError:
            verifier.close()
            raise
        self.peers = peers = Peers(config.peers, config.tls)
        record = store.load_last_signed()
        last_signed = LastSigned.decode(record, chain_id=genesis.chain_id) if record else None
        self.engine = Engine(
            application=chain,
            identity=config.id,
            key=key,
            config=consensus_config(genesis.parameters, settings.tick_seconds),
            last_signed=last_signed,
            abstain_through=0 if last_signed else EVERY_HEIGHT,
            known_transactions=mempool.known,
        )
        self.abstention = (
            None
            if last_signed
            else Abstention(self.engine, config.peers, config.tls, chain.head().height)
        )
        self.feed = feed = CommitFeed(store)
        self.driver = driver = Driver(
            engine=self.engine,
            chain=chain,
            store=store,
            mempool=mempool,
            peers=peers,
            timing=Timing(settings.tick_seconds, genesis.parameters.block_interval_ms / 1000),
            decode_block=lambda data: Block.decode(data, chain_id=genesis.chain_id),
        )
        driver.add_listener(feed.publish)

        def admitted(transactions: list, submitted_here: bool) -> None:  # type: ignore[type-arg]
            if submitted_here:  # a peer's share came from a validator that shares it itself
                peers.share(transactions)
            driver.transactions_available()

        self.intake = intake = Intake(
            Admitter(chain, mempool, verifier, admitted), capacity=settings.intake_capacity
        )
        validator_servicer = ValidatorServicer(
            chain=chain,
            store=store,
            mempool=mempool,
            intake=intake,
            feed=feed,
            running=lambda: self._running,
        )
        consensus_servicer = ConsensusServicer(deliver=driver.deliver, intake=intake, store=store)
        services = [
            Service(
                VALIDATOR_SERVICE,
                lambda s: validator_grpc.add_ValidatorServiceServicer_to_server(
                    validator_servicer, s
                ),
            ),
            Service(
                CONSENSUS_SERVICE,
                lambda s: consensus_service_grpc.add_ConsensusServiceServicer_to_server(
                    consensus_servicer, s
                ),
            ),
        ]
        self.server, self.port = create_server(
            config.server_settings, services, membership=membership_check(lambda: chain.state)
        )
        self.metrics = start_validator_metrics(self)
        self._running = True
        intake.start()
        self.server.start()
        peers.start()
        driver.start()
        if self.abstention is not None:
            self.abstention.start()
        log.info(
            "validator %s listening on port %d at height %d",
            config.id,
            self.port,
            chain.head().height,
        )
        return self.port

    @property
    def failed(self) -> threading.Event:
        """Set when the node loop stopped on an error: the process should exit and restart."""
        return self.driver.failed

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        if self.metrics is not None:
            self.metrics.stop()
        if self.abstention is not None:
            self.abstention.stop()
        self.feed.close()
        self.server.stop(self.settings.grace_seconds).wait()
        self.intake.stop()
        self.driver.stop()
        self.peers.stop()
        self.verifier.close()
        self.store.close()
