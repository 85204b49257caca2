"""A network directory as the SDK and CLI read it: nodes, credentials, who is who.

``straits network init`` writes ``network.json``: every node's id, kind and address,
the CA, one client certificate per central bank and bank, and the regulator's
certificate. ``NetworkIndex.load`` reads it once; ``role_of`` says which seat a
participant id holds (a bank, the central bank, the regulator), which is what the
CLI checks a command against before calling anyone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ledger.errors import expected
from wire.errors import ConfigError
from wire.tls import TlsFiles

REGULATOR = "regulator"
BANK = "bank"
CENTRAL_BANK = "central_bank"
VALIDATOR = "validator"


@dataclass(frozen=True)
class NodeAddress:
    id: str
    kind: str  # validator, central_bank or bank
    address: str
    folder: Path  # holds node.toml and the node's own certificate


@dataclass(frozen=True)
class NetworkIndex:
    directory: Path
    ca: Path
    nodes: tuple[NodeAddress, ...]
    clients: dict[str, TlsFiles]  # participant id -> its client certificate
    regulator: TlsFiles

    @classmethod
    def load(cls, directory: Path | str) -> NetworkIndex:
        base = Path(directory)
        path = base / "network.json"
        try:
            index = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(
                f"expected a network directory with network.json, got {str(path)!r}",
                field="network",
            ) from None
        ca = base / index["ca"]
        return cls(
            directory=base,
            ca=ca,
            nodes=tuple(
                NodeAddress(n["id"], n["kind"], n["address"], (base / n["config"]).parent)
                for n in index["nodes"]
            ),
            clients={
                c["participant"]: TlsFiles(ca, base / c["certificate"], base / c["key"])
                for c in index["clients"]
            },
            regulator=TlsFiles(
                ca,
                base / index["regulator"]["certificate"],
                base / index["regulator"]["key"],
            ),
        )

    def node(self, node_id: str) -> NodeAddress:
        found = next((n for n in self.nodes if n.id == node_id), None)
        if found is None:
            raise ConfigError(
                expected(f"a node of the network ({', '.join(n.id for n in self.nodes)})",
                         node_id),
                field="node",
            )
        return found

    def of_kind(self, kind: str) -> list[NodeAddress]:
        return [n for n in self.nodes if n.kind == kind]

    def banks(self) -> list[str]:
        return sorted(n.id for n in self.of_kind(BANK))

    def role_of(self, participant: str) -> str:
        """The seat ``--as participant`` takes: ``regulator``, or its node's kind
        (``bank``, ``central_bank``, ``validator``)."""
        if participant == REGULATOR:
            return REGULATOR
        node = next((n for n in self.nodes if n.id == participant), None)
        if node is None:
            known = sorted([*(n.id for n in self.nodes), REGULATOR])
            raise ConfigError(expected(f"one of {', '.join(known)}", participant), field="as")
        return node.kind

    def reader_tls(self, participant: str) -> TlsFiles:
        """The certificate that reads validators as ``participant``: the regulator's, or a
        node's own (validators serve client certificates nothing)."""
        return self.regulator if participant in ("", REGULATOR) else self.node_tls(participant)

    def node_tls(self, node_id: str) -> TlsFiles:
        """A node's own certificate (``nodes/<id>/tls.*``): what its operator's tools use
        to read validators as that participant."""
        folder = self.node(node_id).folder
        return TlsFiles(self.ca, folder / "tls.crt", folder / "tls.key")
