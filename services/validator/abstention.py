"""A validator without its last-signed record signs nothing until past the network's head.

The record is what stops a restarted validator from signing a second, different message
at a height and round it signed before (``ledger.consensus.signer``). A validator whose
store was wiped or rebuilt has lost it, and may have signed anything up to one height
past the network's head before it went down. So it starts abstaining at every height,
asks its peers for their heads (``GetHead``) until enough answer that one of them is
honest (f + 1 of them), and then signs only above the highest head reported plus one:
it follows and commits the blocks the others make until then. A network that has not
committed a block yet (every head 0, its own too) is a fresh start: nothing to protect.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import grpc
from straits.validator.v1 import validator_pb2 as pb
from straits.validator.v1 import validator_pb2_grpc as pb_grpc

from ledger.consensus import Engine
from services.common.config import Peer
from wire.tls import TlsFiles, secure_channel

log = logging.getLogger(__name__)

EVERY_HEIGHT = 2**63 - 1
ASK_TIMEOUT_S = 2.0
RETRY_S = 1.0


def network_head(peers: Sequence[Peer], tls: TlsFiles, needed: int) -> int | None:
    """The highest head among the peers' answers, if at least ``needed`` of them answer."""
    heights = []
    for peer in peers:
        channel = secure_channel(peer.address, tls)
        try:
            head = pb_grpc.ValidatorServiceStub(channel).GetHead(
                pb.GetHeadRequest(), timeout=ASK_TIMEOUT_S
            )
            heights.append(head.height)
        except grpc.RpcError as error:
            log.debug("asking %s for its head failed: %s", peer.id, error.code().name)
        finally:
            channel.close()
    return max(heights, default=0) if len(heights) >= needed else None


class Abstention:
    """Sets the engine's abstention once the network's head is known (a thread)."""

    def __init__(
        self, engine: Engine, peers: Sequence[Peer], tls: TlsFiles, own_height: int
    ) -> None:
        self._engine = engine
        self._peers = peers
        self._tls = tls
        self._own_height = own_height
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="abstention", daemon=True)

    def start(self) -> Abstention:
        log.warning("no last-signed record: signing nothing until the network's head is known")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        validators = len(self._peers) + 1
        needed = min(len(self._peers), (validators - 1) // 3 + 1)
        while not self._stopped.is_set():
            head = network_head(self._peers, self._tls, needed)
            if head is not None:
                through = 0 if head == 0 and self._own_height == 0 else head + 1
                self._engine.abstain_only_through(through)
                log.warning(
                    "the network's head is %d: signing again above height %d", head, through
                )
                return
            self._stopped.wait(RETRY_S)
