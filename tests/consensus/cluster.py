"""N consensus engines over a ``SimNetwork``, each with its own stored chain and record.

A node's storage is its ``ToyChain`` (committed blocks) and the encoded
``LastSigned`` record; a crash drops the engine and anything in flight to it,
a restart builds a new engine from that storage alone. Every ``Ready`` is
carried out by the consensus ``Runner``, the one the node loop runs, so the
seeds test the production order (persist, send, commit, advance); a node can be
made to die in the middle of carrying one out (``crash_after_sending``). Safety
is checked on every commit (one block per height across honest nodes; a quorum
of valid seals from the set of the height), and ``SafetyViolation`` names the seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from straits.consensus.v1 import consensus_pb2 as consensus_pb
from straits.ledger.v1 import transaction_pb2 as tx_pb

from ledger import transaction as txs
from ledger.block import Block, verify_seals
from ledger.consensus import (
    BuildProposal,
    ConsensusConfig,
    Engine,
    FetchBlocks,
    LastSigned,
    Message,
    Ready,
    Runner,
)
from ledger.errors import InvalidMessageError, StraitsError
from ledger.keys import PrivateKey
from tests.consensus.keys import cached, participant_key, validator_key, validator_names
from tests.consensus.ledger_chain import LedgerChain, sim_genesis
from tests.consensus.network import Faults, SimNetwork
from tests.consensus.toy_ledger import ToyChain

CHAIN_ID = "straits-sim"
CENTRAL_BANK = "central-bank"
BANKS = ("bank-a", "bank-b", "bank-c")
INITIAL_FUNDS = 1_000_000
TRANSACTION_LIFETIME = 200  # within the real ledger's max_transaction_lifetime


class SafetyViolation(AssertionError):
    pass


class Crashed(Exception):
    """The node died while carrying out a Ready: what the runner had not done yet is lost."""


class Behaviour(Protocol):
    """What makes a node Byzantine: it rewrites what its engine sends and adds its own."""

    def outgoing(
        self, node: Node, cluster: Cluster, data: bytes, to: str | None
    ) -> list[tuple[str | None, bytes]]: ...

    def on_tick(self, node: Node, cluster: Cluster) -> list[tuple[str | None, bytes]]: ...


@dataclass
class Node:
    name: str
    key: PrivateKey
    chain: ToyChain | LedgerChain
    engine: Engine | None
    record: bytes | None = None  # the persisted LastSigned
    runner: Runner | None = None
    # Dies right after sending a message this returns True for (then forgets it).
    crash_after: Callable[[Message], bool] | None = None
    behaviour: Behaviour | None = None
    seen: list[bytes] = field(
        default_factory=list
    )  # recent inbound messages, for replaying attackers

    @property
    def alive(self) -> bool:
        return self.engine is not None

    @property
    def honest(self) -> bool:
        return self.behaviour is None


class Cluster:
    def __init__(
        self,
        n: int,
        *,
        seed: int,
        faults: Faults | None = None,
        config: ConsensusConfig | None = None,
        byzantine: dict[int, Behaviour] | None = None,
        real_ledger: bool = False,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.network = SimNetwork(random.Random(seed ^ 0x5EED), faults or Faults())
        self.config = config or ConsensusConfig(heartbeat_ticks=40)
        self.now = 0
        names = validator_names(n)
        self.validator_keys = {name: cached(validator_key(name).public_key) for name in names}
        self.real_ledger = real_ledger
        self.genesis = sim_genesis(CHAIN_ID, self.validator_keys, BANKS, CENTRAL_BANK)
        self.nodes: dict[str, Node] = {}
        for index, name in enumerate(names):
            behaviour = (byzantine or {}).get(index)
            self.nodes[name] = Node(
                name, validator_key(name), self._new_chain(), None, behaviour=behaviour
            )
        self.pending: list[txs.Transaction] = []
        self.finalised: dict[int, bytes] = {}
        self._nonce = 0
        self._decoded: dict[bytes, Message] = {}
        self.signed_at: dict[tuple[str, int, int, object], bytes] = {}
        for node in self.nodes.values():
            self._start(node)

    # --- driving --------------------------------------------------------------------

    def run(self, ticks: int) -> None:
        for _ in range(ticks):
            self.step()

    def run_until(self, condition: object, limit: int) -> bool:
        for _ in range(limit):
            if condition():  # type: ignore[operator]
                return True
            self.step()
        return bool(condition())  # type: ignore[operator]

    def step(self) -> None:
        self.now += 1
        for envelope in self.network.due(self.now):
            node = self.nodes[envelope.receiver]
            if node.alive:
                self._deliver(node, envelope.sender, envelope.kind, envelope.payload)
        for node in self.nodes.values():
            if node.engine is None:
                continue
            self._carry_out(node, node.engine.tick())
            if node.behaviour is not None:
                self._send_all(node, node.behaviour.on_tick(node, self))

    def submit(self, count: int = 1) -> None:
        """Banks pay each other; every validator's pool hears of the payments."""
        for _ in range(count):
            payer, payee = self.rng.sample(BANKS, 2)
            amount = self.rng.randint(1, 5000)
            self._sign(
                payer,
                transfer=tx_pb.Transfer(payee=payee, amount=amount, priority=tx_pb.PRIORITY_NORMAL),
            )
        self._tell_pending()

    def fund_banks(self) -> None:
        for bank in BANKS:
            self._sign(
                CENTRAL_BANK,
                issue=tx_pb.Issue(bank=bank, amount=INITIAL_FUNDS, collateral_ref="sim"),
            )
        self._tell_pending()

    def propose_validators(self, members: Iterable[str], effective_height: int) -> None:
        validators = [
            tx_pb.Validator(id=m, key=validator_key(m).public_key.to_proto()) for m in members
        ]
        self._sign(
            CENTRAL_BANK,
            change_validators=tx_pb.ChangeValidators(
                validators=validators, effective_height=effective_height
            ),
        )
        self._tell_pending()

    def _sign(self, signer: str, **kind: object) -> None:
        """A transaction valid for TRANSACTION_LIFETIME heights; expired ones leave the pool."""
        self._nonce += 1
        top = max(len(node.chain.blocks) for node in self.nodes.values())
        self.pending = [tx for tx in self.pending if tx.body.valid_until_height > top]
        body = tx_pb.TransactionBody(
            signer=signer, valid_until_height=top + TRANSACTION_LIFETIME, nonce=self._nonce, **kind
        )
        self.pending.append(txs.sign(CHAIN_ID, participant_key(signer), body))

    def _new_chain(self) -> ToyChain | LedgerChain:
        if self.real_ledger:
            return LedgerChain(self.genesis)
        return ToyChain(CHAIN_ID, self.validator_keys)

    def add_node(self, name: str) -> Node:
        """A new validator joins with the genesis chain and catches up by sync."""
        node = Node(name, validator_key(name), self._new_chain(), None)
        self.nodes[name] = node
        self._start(node)
        return node

    def crash(self, name: str) -> None:
        node = self.nodes[name]
        node.engine = node.runner = None

    def crash_after_sending(self, name: str, when: Callable[[Message], bool]) -> None:
        """``name`` dies right after the first message it sends that ``when`` picks: in the
        middle of carrying out a Ready, with what follows the send left undone."""
        self.nodes[name].crash_after = when

    def restart(self, name: str) -> None:
        self._start(self.nodes[name])

    def partition(self, *groups: Iterable[str]) -> None:
        self.network.partition(groups)

    def heal(self) -> None:
        self.network.heal()

    # --- observations ---------------------------------------------------------------

    def honest(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.honest]

    def heights(self) -> dict[str, int]:
        return {n.name: len(n.chain.blocks) for n in self.nodes.values()}

    def min_honest_height(self, alive_only: bool = True) -> int:
        return min(len(n.chain.blocks) for n in self.honest() if n.alive or not alive_only)

    def fail(self, what: str) -> SafetyViolation:
        return SafetyViolation(f"seed={self.seed} tick={self.now}: {what}")

    # --- the runtime's part ---------------------------------------------------------

    def _start(self, node: Node) -> None:
        record = LastSigned.decode(node.record, chain_id=CHAIN_ID) if node.record else None
        node.engine = engine = Engine(
            application=node.chain,
            identity=node.name,
            key=node.key,
            config=self.config,
            last_signed=record,
        )
        io = NodeIO(self, node)
        node.runner = Runner(engine, store=io, transport=io, chain=io, proposer=io)
        self._carry_out(node, engine.start())
        self._tell_pending([node])

    def _tell_pending(self, nodes: Iterable[Node] | None = None) -> None:
        for node in nodes or self.nodes.values():
            if node.engine is not None and NodeIO(self, node).transactions_waiting():
                self._carry_out(node, node.engine.transactions_available())

    def _deliver(self, node: Node, sender: str, kind: str, payload: object) -> None:
        engine = node.engine
        assert engine is not None
        if kind == "consensus":
            assert isinstance(payload, bytes)
            if node.behaviour is not None:
                node.seen = [*node.seen[-63:], payload]
            self._carry_out(node, self._receive(engine, payload))
        elif kind == "fetch":
            request = consensus_pb.BlockRequest.FromString(payload)  # type: ignore[arg-type]
            found = node.chain.blocks[request.from_height - 1 : request.to_height]
            response = consensus_pb.BlockResponse(blocks=[b.to_proto() for b in found])
            self.network.send(self.now, node.name, sender, "blocks", response.SerializeToString())
        else:
            response = consensus_pb.BlockResponse.FromString(payload)  # type: ignore[arg-type]
            for message in response.blocks:
                block = Block.from_proto(message, chain_id=CHAIN_ID)
                if node.engine is None or block.height != len(node.chain.blocks) + 1:
                    continue
                self._carry_out(node, node.engine.synced(block))

    def _decode(self, data: bytes) -> Message | None:
        """Decode each distinct message once for all nodes."""
        message = self._decoded.get(data)
        if message is None:
            try:
                message = Message.decode(data, chain_id=CHAIN_ID)
            except InvalidMessageError:
                return None
            if len(self._decoded) > 4096:
                self._decoded.clear()
            self._decoded[data] = message
        return message

    def _receive(self, engine: Engine, data: bytes) -> Ready:
        message = self._decode(data)
        return engine.receive(data) if message is None else engine.receive_message(message)

    def _check_single_signature(self, node: Node, data: bytes) -> None:
        """No honest validator signs two different payloads at one (height, round, step)."""
        message = self._decode(data)
        if message is None:
            raise self.fail(f"{node.name} sent bytes that do not decode")
        signed = message.signed
        place = (signed.sender, signed.height, signed.round, signed.step)
        first = self.signed_at.setdefault(place, signed.payload_bytes)
        if first != signed.payload_bytes:
            raise self.fail(
                f"{node.name} signed twice at height {signed.height} round {signed.round} "
                f"step {signed.step.name}"
            )

    def _carry_out(self, node: Node, ready: Ready) -> None:
        assert node.runner is not None
        try:
            node.runner.carry_out(ready)
        except Crashed:
            self.crash(node.name)

    def _send_all(
        self, node: Node, messages: list[tuple[str | None, bytes]], rewrite: bool = False
    ) -> None:
        for to, data in messages:
            out = [(to, data)]
            if rewrite and node.behaviour is not None:
                out = node.behaviour.outgoing(node, self, data, to)
            for receiver, payload in out:
                targets = [receiver] if receiver else [n for n in self.nodes if n != node.name]
                for target in targets:
                    self.network.send(self.now, node.name, target, "consensus", payload)

    def _commit(self, node: Node, block: Block) -> None:
        height = block.height
        if node.honest:
            try:
                verify_seals(block, node.chain.validators_for(height))
            except StraitsError as exc:
                raise self.fail(
                    f"{node.name} finalised block {height} without a seal quorum: {exc}"
                ) from exc
            first = self.finalised.setdefault(height, block.hash)
            if first != block.hash:
                raise self.fail(f"{node.name} finalised a different block at height {height}")
        node.chain.commit(block)
        if node.honest and not node.chain.money_conserved():
            raise self.fail(f"{node.name}: money not conserved at height {height}")


class NodeIO:
    """One simulated node's side of the ``Runner``: its record, its links and its chain."""

    def __init__(self, cluster: Cluster, node: Node) -> None:
        self._cluster = cluster
        self._node = node

    def save_last_signed(self, record: bytes) -> None:
        self._node.record = record

    def send(self, data: bytes, to: str | None) -> None:
        cluster, node = self._cluster, self._node
        if node.honest:
            cluster._check_single_signature(node, data)
        cluster._send_all(node, [(to, data)], rewrite=True)
        if node.crash_after is not None:
            message = cluster._decode(data)
            if message is not None and node.crash_after(message):
                node.crash_after = None
                raise Crashed(node.name)

    def fetch(self, request: FetchBlocks) -> None:
        cluster = self._cluster
        message = consensus_pb.BlockRequest(
            from_height=request.from_height, to_height=request.to_height
        )
        cluster.network.send(
            cluster.now, self._node.name, request.peers[0], "fetch", message.SerializeToString()
        )

    def commit(self, block: Block) -> None:
        self._cluster._commit(self._node, block)

    def build(self, request: BuildProposal) -> Block:
        cluster = self._cluster
        return self._node.chain.build(request, cluster.pending, timestamp_ms=cluster.now)

    def transactions_waiting(self) -> bool:
        committed = self._node.chain.committed_ids
        return any(tx.id not in committed for tx in self._cluster.pending)
