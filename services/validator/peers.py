"""Links from one validator to the others: consensus messages, shared transactions, sync.

Each peer gets one sender thread that drains its send queue into a single ``Deliver``
call per round trip, so a burst of messages costs one RPC, and a slow or dead peer
holds up only its own thread. Sending is best effort: QBFT tolerates lost messages
(a stuck validator rebroadcasts its ROUND-CHANGE, a lagging one syncs), so a failed
call is counted and dropped rather than retried here; the send queue is bounded, and
when a peer is down the oldest messages are the ones that go.

Transactions admitted here are shared the same way, in batches, so that whichever
validator proposes next has them.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
from straits.consensus.v1 import consensus_pb2 as consensus_pb
from straits.consensus.v1 import consensus_service_pb2 as service_pb
from straits.consensus.v1 import consensus_service_pb2_grpc as service_grpc
from straits.ledger.v1 import transaction_pb2 as tx_pb

from ledger.block import Block
from ledger.errors import StraitsError
from ledger.transaction import Transaction
from services.common.config import Peer
from services.common.server import MAX_MESSAGE_BYTES
from wire.tls import TlsFiles, secure_channel

log = logging.getLogger(__name__)

MAX_SEND_QUEUE = 4096
MAX_SHARE_BATCH = 2000
MAX_DELIVER_BYTES = 8 * 1024 * 1024
DELIVER_TIMEOUT_S = 2.0
SYNC_TIMEOUT_S = 10.0


@dataclass
class PeerStats:
    delivered: int = 0
    failed_calls: int = 0
    dropped: int = 0


class PeerLink:
    def __init__(self, peer: Peer, tls: TlsFiles) -> None:
        self.peer = peer
        self._channel = secure_channel(
            peer.address, tls, options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
        )
        self._stub = service_grpc.ConsensusServiceStub(self._channel)
        self._messages: deque[bytes] = deque()
        self._transactions: deque[tx_pb.SignedTransaction] = deque()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=f"peer-{peer.id}", daemon=True)
        self.stats = PeerStats()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=DELIVER_TIMEOUT_S + 1)
        self._channel.close()

    def send(self, message: bytes) -> None:
        with self._wake:
            if len(self._messages) >= MAX_SEND_QUEUE:
                self._messages.popleft()
                self.stats.dropped += 1
            self._messages.append(message)
            self._wake.notify()

    def share(self, transactions: Sequence[tx_pb.SignedTransaction]) -> None:
        with self._wake:
            overflow = len(self._transactions) + len(transactions) - MAX_SEND_QUEUE
            for _ in range(max(0, overflow)):
                self._transactions.popleft()
                self.stats.dropped += 1
            self._transactions.extend(transactions)
            self._wake.notify()

    def fetch(self, from_height: int, to_height: int) -> list[bytes]:
        """Encoded committed blocks [from, to] from this peer (possibly fewer)."""
        response = self._stub.SyncBlocks(
            consensus_pb.BlockRequest(from_height=from_height, to_height=to_height),
            timeout=SYNC_TIMEOUT_S,
        )
        return [b.SerializeToString() for b in response.blocks]

    def _run(self) -> None:
        while True:
            with self._wake:
                while not (self._messages or self._transactions or self._stopped):
                    self._wake.wait()
                if self._stopped:
                    return
                messages, size = [], 0
                # One Deliver stays well inside the peer's 16 MB message limit, however
                # much piled up while it was unreachable.
                while self._messages and (
                    not messages or size + len(self._messages[0]) <= MAX_DELIVER_BYTES
                ):
                    size += len(self._messages[0])
                    messages.append(self._messages.popleft())
                transactions = [
                    self._transactions.popleft()
                    for _ in range(min(len(self._transactions), MAX_SHARE_BATCH))
                ]
            self._deliver(messages, transactions)

    def _deliver(self, messages: list[bytes], transactions: list[tx_pb.SignedTransaction]) -> None:
        # Transactions first: a proposal that follows then finds them admitted, their
        # signatures already checked. Each call fails alone: a slow share must not cost
        # the consensus messages behind it.
        if transactions:
            self._call(
                self._stub.ShareTransactions,
                service_pb.ShareTransactionsRequest(transactions=transactions),
            )
        if messages:
            request = service_pb.DeliverRequest(messages=messages)
            if self._call(self._stub.Deliver, request):
                self.stats.delivered += len(messages)

    def _call(self, method: Callable[..., object], request: object) -> bool:
        try:
            method(request, timeout=DELIVER_TIMEOUT_S)
        except grpc.RpcError as error:
            self.stats.failed_calls += 1
            log.debug("peer %s unreachable: %s", self.peer.id, error.code())
            return False
        return True


class Peers:
    """All links of one validator, by peer id."""

    def __init__(self, peers: Sequence[Peer], tls: TlsFiles) -> None:
        self.links = {p.id: PeerLink(p, tls) for p in peers}

    def start(self) -> None:
        for link in self.links.values():
            link.start()

    def stop(self) -> None:
        for link in self.links.values():
            link.stop()

    def send(self, message: bytes, to: str | None) -> None:
        if to is None:
            for link in self.links.values():
                link.send(message)
        elif to in self.links:
            self.links[to].send(message)

    def share(self, transactions: Sequence[Transaction]) -> None:
        # Converted once for all peers: this runs for every admitted transaction.
        signed = [t.to_proto() for t in transactions]
        for link in self.links.values():
            link.share(signed)

    def fetch(
        self,
        from_height: int,
        to_height: int,
        order: Sequence[str],
        decode: Callable[[bytes], Block],
    ) -> list[Block]:
        """Blocks from the first peer in ``order`` that answers; empty if none does."""
        for peer_id in order:
            link = self.links.get(peer_id)
            if link is None:
                continue
            try:
                return [decode(data) for data in link.fetch(from_height, to_height)]
            except grpc.RpcError as error:
                log.info("sync from %s failed: %s", peer_id, error.code())
            except StraitsError as error:
                log.warning("sync from %s brought a bad block: %s", peer_id, error)
            except Exception:  # a broken answer from one peer must not end the catch-up
                log.exception("sync from %s failed", peer_id)
        return []
