"""Where a load run goes, and with whose credentials: only the endpoints given.

Resolved from a network directory's ``network.json`` (as the other commands do):
each bank's node address and client certificate (bank path), its ledger key and
node certificate (validators path: a validator takes from a bank only what that
bank signed, over that bank's own certificate), the validators' addresses, and
the regulator's certificate (to follow every committed block). Addresses can be
overridden for a remote network; the credentials still come from the directory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from clients.cli.target import network_index
from ledger import genesis
from ledger.errors import expected
from ledger.roles import Role
from services.common.config import load_config
from wire.errors import ConfigError
from wire.tls import TlsFiles


@dataclass(frozen=True)
class BankAccess:
    bank: str
    node_address: str
    client_tls: TlsFiles  # a client of the bank's node
    node_tls: TlsFiles  # the bank node's own identity, for the validators
    ledger_key: Path


@dataclass(frozen=True)
class Endpoints:
    banks: tuple[BankAccess, ...]
    validators: tuple[str, ...]
    regulator_tls: TlsFiles
    central_bank: tuple[str, TlsFiles] | None  # to fund the banks, when asked
    max_transaction_lifetime: int

    def to_dict(self) -> dict[str, object]:
        return {"banks": {b.bank: b.node_address for b in self.banks},
                "validators": list(self.validators)}


def from_network(directory: Path, *, validators: Sequence[str] = (),
                 bank_nodes: Mapping[str, str] | None = None,
                 banks: Sequence[str] = ()) -> Endpoints:
    """The network's endpoints; ``validators`` and ``bank_nodes`` replace its addresses,
    ``banks`` limits the run to those banks."""
    base = Path(directory)
    index = network_index(base)
    ca = base / index["ca"]
    overrides = dict(bank_nodes or {})
    clients = {c["participant"]: c for c in index["clients"]}
    accesses, validator_addresses, central = [], [], None
    lifetime = 0
    for node in index["nodes"]:
        if node["kind"] == Role.VALIDATOR:
            validator_addresses.append(node["address"])
            continue
        config = load_config(base / node["config"])
        lifetime = lifetime or genesis.load(config.genesis).parameters.max_transaction_lifetime
        client = clients.get(node["id"])
        if client is None:
            continue
        client_tls = TlsFiles(ca, base / client["certificate"], base / client["key"])
        if node["kind"] == Role.CENTRAL_BANK:
            central = (node["address"], client_tls)
        elif node["kind"] == Role.BANK and (not banks or node["id"] in banks):
            accesses.append(BankAccess(node["id"], overrides.pop(node["id"], node["address"]),
                                       client_tls, config.tls, config.ledger_key))
    if overrides:
        raise ConfigError(expected("bank ids of this network", sorted(overrides)),
                          field="bank_node")
    if len(accesses) < 2:
        raise ConfigError(expected("at least two banks in the network", len(accesses)),
                          field="banks")
    regulator = index["regulator"]
    return Endpoints(
        banks=tuple(accesses),
        validators=tuple(validators) or tuple(validator_addresses),
        regulator_tls=TlsFiles(ca, base / regulator["certificate"], base / regulator["key"]),
        central_bank=central,
        max_transaction_lifetime=lifetime or 64,
    )
