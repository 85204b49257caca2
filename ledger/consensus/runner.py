"""The one way a ``Ready`` is carried out, by the node loop and by the simulated network alike.

The order is what keeps a validator safe across a crash:

1. persist ``last_signed``: a message signed under a record that is not on disk
   could be followed, after a restart, by a second and different message for
   the same (height, round, step);
2. send ``messages``: peers need not wait for this node's disk write of a block;
3. commit the ``committed`` blocks (each carries its quorum of seals): a crash
   before the write loses nothing, the restarted node fetches the block again;
4. start the ``fetch``; ask for the ``build`` and, once the block is there,
   ``propose`` it;
5. after a commit, ``advance`` the engine to the next height and, if transactions
   are waiting, tell it so.

Readies are carried out first in, first out: a later ``Ready`` may carry a newer
last-signed record, and the record on disk must never go back to an older one.

The runner does no I/O of its own: the store, the transport, the chain and the
proposer are interfaces the caller hands in. An exception from any of them
stops the carrying out where it is, as a crash would: the engine may now be
ahead of the store, and the caller must not feed it again (the node loop stops
the node; the simulation marks the node crashed).
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from ledger.block import Block
from ledger.consensus.engine import Engine
from ledger.consensus.ready import BuildProposal, FetchBlocks, Ready


class RecordStore(Protocol):
    def save_last_signed(self, record: bytes) -> None:
        """Durably keep the encoded ``LastSigned`` record before returning."""
        ...


class Transport(Protocol):
    def send(self, data: bytes, to: str | None) -> None:
        """Send an encoded message to validator ``to``, or to every other one if None."""
        ...

    def fetch(self, request: FetchBlocks) -> None:
        """Start fetching the blocks; each one that arrives goes to ``Engine.synced``."""
        ...


class Committer(Protocol):
    def commit(self, block: Block) -> object:
        """Apply and store ``block`` (its seals checked by the engine); the result is unused."""
        ...


class Proposer(Protocol):
    def build(self, request: BuildProposal) -> Block | None:
        """A block for ``request`` now, or None to build it later and hand it to ``propose``."""
        ...

    def transactions_waiting(self) -> bool:
        """Whether transactions not yet in a committed block are waiting to be proposed."""
        ...


class Runner:
    def __init__(
        self,
        engine: Engine,
        *,
        store: RecordStore,
        transport: Transport,
        chain: Committer,
        proposer: Proposer,
    ) -> None:
        self.engine = engine
        self._store = store
        self._transport = transport
        self._chain = chain
        self._proposer = proposer

    def propose(self, block: Block) -> None:
        """Hand a block built later (``Proposer.build`` said None) to the engine."""
        self.carry_out(self.engine.propose(block))

    def carry_out(self, ready: Ready) -> None:
        engine = self.engine
        todo = deque([ready])
        while todo:
            ready = todo.popleft()
            if ready.last_signed is not None:
                self._store.save_last_signed(ready.last_signed.encode())
            for outbound in ready.messages:
                self._transport.send(outbound.data, outbound.to)
            for block in ready.committed:
                self._chain.commit(block)
            if ready.fetch is not None:
                self._transport.fetch(ready.fetch)
            if ready.build is not None:
                block = self._proposer.build(ready.build)
                if block is not None:
                    todo.append(engine.propose(block))
            if ready.committed:
                todo.append(engine.advance())
                if self._proposer.transactions_waiting():
                    # The new height starts idle; what is still waiting must wake it.
                    todo.append(engine.transactions_available())
