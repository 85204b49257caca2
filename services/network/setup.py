"""``straits network init``: everything a local network needs, written to one directory.

For N validators, the central bank, M banks and a regulator it generates ledger
signing keys, the network CA, a TLS certificate per node, client certificates, the
genesis file and one config file per node, with loopback ports counted up from a
base port. The layout (paths relative to the directory):

    genesis.json                  the network's founding file (ledger.genesis)
    network.json                  index: every node's id, kind, address, config
    pki/ca.crt, pki/ca.key        the network CA (the key issues later certificates)
    pki/revoked.crl               the CA's revocation list, once ``straits pki revoke`` ran
    nodes/<id>/node.toml          config of a validator, the central bank or a bank
    nodes/<id>/ledger.key         the participant's ledger signing key (PEM)
    nodes/<id>/tls.crt, tls.key   the node's TLS certificate, straits://<role>/<id>
    regulator/ledger.key, tls.crt, tls.key   the regulator's tools (it runs no node)
    clients/<id>/client.crt, client.key      a client of the central bank or a bank
    prometheus/prometheus.yml, rules.yml     Prometheus scraping every node's metrics port

Ports: validator i (from 0) listens on base_port + i, the central bank on
base_port + N, bank j on base_port + N + 1 + j; metrics on the same number + 100.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import string
from dataclasses import dataclass
from pathlib import Path

from ledger.errors import expected
from ledger.genesis import (
    Currency,
    Genesis,
    Parameters,
    ParticipantSpec,
    ValidatorSpec,
)
from ledger.keys import KeyType, PrivateKey
from ledger.roles import Role
from services.common.config import NodeConfig, Peer, render_config
from services.common.errors import ConfigError
from services.common.pki import DEFAULT_HOSTS, CertificateAuthority, Identity
from services.network import prometheus as prometheus_config
from wire.tls import TlsFiles

METRICS_OFFSET = 100
CENTRAL_BANK_ID = "central-bank"
REGULATOR_ID = "regulator"
REVOCATIONS = "revoked.crl"


@dataclass(frozen=True)
class NetworkPlan:
    chain_id: str = "straits-local"
    validators: int = 4
    banks: int = 3
    base_port: int = 7100
    host: str = "127.0.0.1"
    currency: str = "SGD"
    decimals: int = 2
    # The banks' ledger keys; validators and the central bank keep Ed25519. P-256 costs
    # a validator less to verify on common x86 machines (docs/bench.md).
    bank_key_type: KeyType = KeyType.ED25519

    def check(self) -> None:
        if self.validators < 1:
            raise ConfigError(expected("at least 1 validator", self.validators),
                              field="validators")
        if not (self.currency.isascii() and self.currency.isalpha() and self.currency.isupper()
                and len(self.currency) <= 8):
            raise ConfigError(expected("an upper-case currency code such as 'SGD'",
                                       self.currency), field="currency")
        if not 0 <= self.decimals <= 18:
            raise ConfigError(expected("decimals in 0..18", self.decimals), field="decimals")
        if self.banks < 1:
            raise ConfigError(expected("at least 1 bank", self.banks), field="banks")
        last = self.base_port + self.validators + self.banks + METRICS_OFFSET
        if self.base_port < 1 or last > 65535:
            raise ConfigError(expected(f"ports {self.base_port}..{last} within 1..65535",
                                       self.base_port), field="base_port")


@dataclass(frozen=True)
class NodeEntry:
    id: str
    kind: Role
    address: str
    config: Path


@dataclass(frozen=True)
class NetworkLayout:
    """What ``init_network`` wrote; paths are absolute."""

    directory: Path
    genesis: Path
    ca_certificate: Path
    nodes: tuple[NodeEntry, ...]
    clients: tuple[TlsFiles, ...]
    regulator: TlsFiles


def free_base_port(span: int, *, first: int = 21000, step: int = 211) -> int:
    """A base port with ``span`` free loopback ports above it, each checked by binding it:
    for tests and benchmarks that start whole networks on one machine."""
    for base in range(first, 65535 - span, step):
        sockets = []
        try:
            for port in range(base, base + span):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise ConfigError(expected(f"{span} free loopback ports in a row", "none"), field="base_port")


def bank_ids(count: int) -> list[str]:
    """bank-a .. bank-z, then bank-aa, bank-ab ...: short, sortable, easy to type."""
    ids = []
    for i in range(count):
        suffix, n = "", i + 1
        while n:
            n, r = divmod(n - 1, 26)
            suffix = string.ascii_lowercase[r] + suffix
        ids.append(f"bank-{suffix}")
    return ids


def bank_bic(index: int, bank_id: str, country: str) -> str:
    """bank-a -> BNKA<country>X0, bank-aa -> BKAA<country>X0, past two letters B and the
    index in base 36 (B01A...).

    The location code's second character 0 marks a test BIC, so a local network's
    codes never stand for a real institution."""
    suffix = bank_id.removeprefix("bank-").upper()
    if len(suffix) == 1:
        party = f"BNK{suffix}"
    elif len(suffix) == 2:
        party = f"BK{suffix}"
    else:
        digits = ""
        n = index
        for _ in range(3):
            n, r = divmod(n, 36)
            digits = (string.digits + string.ascii_uppercase)[r] + digits
        party = f"B{digits}"
    return f"{party}{country}X0"


def _country(currency: str) -> str:
    # An ISO 4217 code starts with its country's ISO 3166 code (SGD: SG).
    return currency[:2] if len(currency) == 3 and currency.isalpha() else "XX"


def _title(participant_id: str) -> str:
    return participant_id.replace("-", " ").title()


def init_network(directory: Path, plan: NetworkPlan, *, now: dt.datetime) -> NetworkLayout:
    """Writes a whole network into ``directory``; refuses one that already holds a genesis."""
    plan.check()
    directory = Path(directory).absolute()
    genesis_path = directory / "genesis.json"
    if genesis_path.exists():
        raise ConfigError(f"expected a directory without a network, found {genesis_path}",
                          field="dir")
    for sub in ("pki", "nodes", "regulator", "clients"):
        (directory / sub).mkdir(parents=True, exist_ok=True)

    ca = CertificateAuthority.create(plan.chain_id, now=now)
    ca_path = directory / "pki" / "ca.crt"
    ca.save(ca_path, directory / "pki" / "ca.key")
    hosts = DEFAULT_HOSTS if plan.host in DEFAULT_HOSTS else (*DEFAULT_HOSTS, plan.host)

    def tls_for(folder: Path, identity: Identity, stem: str, name: str = "") -> TlsFiles:
        folder.mkdir(parents=True, exist_ok=True)
        files = TlsFiles(ca_path, folder / f"{stem}.crt", folder / f"{stem}.key")
        ca.issue(identity, now=now, name=name, hosts=hosts).save(files.certificate, files.key)
        return files

    def ledger_key(folder: Path, kind: Role) -> tuple[Path, PrivateKey]:
        key = PrivateKey.generate(plan.bank_key_type if kind is Role.BANK else KeyType.ED25519)
        key.save(folder / "ledger.key")
        return folder / "ledger.key", key

    validator_ids = [f"validator-{i + 1}" for i in range(plan.validators)]
    banks = bank_ids(plan.banks)
    node_order = [(v, Role.VALIDATOR) for v in validator_ids]
    node_order += [(CENTRAL_BANK_ID, Role.CENTRAL_BANK)]
    node_order += [(b, Role.BANK) for b in banks]
    port_of = {node_id: plan.base_port + i for i, (node_id, _) in enumerate(node_order)}
    address_of = {node_id: f"{plan.host}:{port}" for node_id, port in port_of.items()}
    peers = tuple(Peer(v, address_of[v]) for v in validator_ids)

    public_keys = {}
    configs: list[tuple[NodeConfig, Path]] = []
    for node_id, kind in node_order:
        folder = directory / "nodes" / node_id
        folder.mkdir(parents=True, exist_ok=True)
        key_path, key = ledger_key(folder, kind)
        public_keys[node_id] = key.public_key
        config = NodeConfig(
            kind=kind,
            id=node_id,
            listen=address_of[node_id],
            data_dir=folder / "data",
            genesis=genesis_path,
            ledger_key=key_path,
            tls=tls_for(folder, Identity(node_id, kind), "tls"),
            validators=peers,
            metrics_port=port_of[node_id] + METRICS_OFFSET,
            revocations=directory / "pki" / REVOCATIONS,
        )
        configs.append((config, folder / "node.toml"))

    _, regulator_key = ledger_key(directory / "regulator", Role.REGULATOR)
    regulator = tls_for(directory / "regulator", Identity(REGULATOR_ID, Role.REGULATOR), "tls")
    clients = tuple(
        tls_for(directory / "clients" / pid, Identity(pid, Role.CLIENT), "client", f"{pid}-client")
        for pid in [CENTRAL_BANK_ID, *banks]
    )

    country = _country(plan.currency)
    participants = [ParticipantSpec(CENTRAL_BANK_ID, Role.CENTRAL_BANK, "Central Bank",
                                    public_keys[CENTRAL_BANK_ID], bic=f"CBNK{country}X0")]
    participants += [ParticipantSpec(b, Role.BANK, _title(b), public_keys[b],
                                     bic=bank_bic(i, b, country)) for i, b in enumerate(banks)]
    participants += [ParticipantSpec(REGULATOR_ID, Role.REGULATOR, "Regulator",
                                     regulator_key.public_key)]
    genesis = Genesis(
        chain_id=plan.chain_id,
        currency=Currency(plan.currency, plan.decimals),
        genesis_time_ms=int(now.timestamp() * 1000),
        participants=tuple(participants),
        validators=tuple(ValidatorSpec(v, public_keys[v]) for v in validator_ids),
        parameters=Parameters(),
    )
    # Through from_dict, so init can never write a genesis that the nodes would refuse.
    Genesis.from_dict(genesis.to_dict()).save(genesis_path)

    nodes = []
    for config, path in configs:
        path.write_text(render_config(config, path.parent))
        nodes.append(NodeEntry(config.id, config.kind, config.listen, path))
    layout = NetworkLayout(directory, genesis_path, ca_path, tuple(nodes), clients, regulator)
    _write_index(layout)
    prometheus_config.write(directory, [config for config, _ in configs])
    return layout


def _write_index(layout: NetworkLayout) -> None:
    def rel(path: Path) -> str:
        return path.relative_to(layout.directory).as_posix()

    index = {
        "genesis": rel(layout.genesis),
        "ca": rel(layout.ca_certificate),
        "nodes": [{"id": n.id, "kind": n.kind.value, "address": n.address, "config": rel(n.config)}
                  for n in layout.nodes],
        "clients": [{"participant": c.certificate.parent.name, "certificate": rel(c.certificate),
                     "key": rel(c.key)} for c in layout.clients],
        "regulator": {"certificate": rel(layout.regulator.certificate),
                      "key": rel(layout.regulator.key)},
    }
    (layout.directory / "network.json").write_text(json.dumps(index, indent=2) + "\n")
