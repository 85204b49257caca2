"""The key ceremony across hosts: each host keeps its private keys, the central bank signs
requests, genesis comes from public keys, and the bundles make working nodes."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from straits.bank.v1 import bank_pb2 as pb

from clients.cli.main import main
from clients.sdk import BankClient, CentralBankClient, open_channel
from ledger import genesis as ledger_genesis
from ledger.keys import PrivateKey
from services.common.config import load_config
from services.common.errors import BadCertificateError
from services.common.pki import identity_of, load_certificate
from services.network.ceremony.request import KeyRequest
from services.network.launcher import Launcher
from services.network.setup import free_base_port
from wire.tls import TlsFiles

VALIDATORS = [f"validator-{i}" for i in range(1, 5)]
# host directory -> (participant id, role)
HOSTS = {
    **{v: (v, "validator") for v in VALIDATORS},
    "central-bank": ("central-bank", "central_bank"),
    "bank-a": ("bank-a", "bank"),
    "bank-b": ("bank-b", "bank"),
    "regulator": ("regulator", "regulator"),
    "bank-a-payments": ("bank-a", "client"),
    "central-bank-ops": ("central-bank", "client"),
}
NODES = [*VALIDATORS, "central-bank", "bank-a", "bank-b"]
PEM_BODY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----\n(.*?)-----END", re.S)


@dataclass(frozen=True)
class Ceremony:
    root: Path
    base_port: int

    def host(self, name: str) -> Path:
        return self.root / "hosts" / name

    @property
    def ca(self) -> Path:
        return self.root / "ca"

    @property
    def public(self) -> Path:
        """Where the central bank collects requests and writes what it hands back."""
        return self.root / "central-bank-desk"


def _cli(*argv: str) -> None:
    assert main(list(argv)) == 0, f"straits {' '.join(argv)} failed"


@pytest.fixture(scope="module")
def ceremony(tmp_path_factory: pytest.TempPathFactory) -> Ceremony:
    root = tmp_path_factory.mktemp("ceremony")
    done = Ceremony(root, free_base_port(len(NODES)))
    requests = done.public / "requests"
    requests.mkdir(parents=True)
    # 1. Each host generates its own keys; only its request leaves it.
    for i, (host, (participant, role)) in enumerate(HOSTS.items()):
        address = (f"127.0.0.1:{done.base_port + NODES.index(host)}" if host in NODES else "")
        _cli("keys", "generate", "--dir", str(done.host(host)), "--id", participant,
             "--role", role, "--address", address, "--name", participant.title())
        shutil.copyfile(done.host(host) / "request.json", requests / f"{i:02d}-{host}.json")
    request_files = sorted(str(p) for p in requests.iterdir())
    # 2. The central bank's CA signs them; 3. genesis from public keys; 4. bundles.
    _cli("pki", "init", "--dir", str(done.ca), "--chain-id", "straits-ceremony")
    shutil.copyfile(done.ca / "ca.crt", done.public / "ca.crt")
    _cli("pki", "sign", "--ca-dir", str(done.ca), "--out", str(done.public / "certs"),
         *request_files)
    _cli("genesis", "assemble", "--chain-id", "straits-ceremony", "--out",
         str(done.public / "genesis.json"), *request_files)
    _cli("bundle", "--genesis", str(done.public / "genesis.json"), "--ca",
         str(done.public / "ca.crt"), "--certs", str(done.public / "certs"), "--out",
         str(done.public / "bundles"), "--metrics-port", "0", "--listen-host", "127.0.0.1",
         *request_files)
    # Each host installs its bundle beside its keys.
    for host, (participant, role) in HOSTS.items():
        bundle = participant + (".client" if role == "client" else "")
        shutil.copytree(done.public / "bundles" / bundle, done.host(host), dirs_exist_ok=True)
    return done


def _private_key_bodies(path: Path) -> list[bytes]:
    return [b"".join(body.split()) for body in PEM_BODY.findall(path.read_bytes())]


def test_no_private_key_appears_outside_its_own_directory(ceremony: Ceremony) -> None:
    owners = {ceremony.ca: ["ca.key"], **{ceremony.host(h): ["tls.key"] for h in HOSTS}}
    for host, (_, role) in HOSTS.items():
        if role != "client":
            owners[ceremony.host(host)].append("ledger.key")
    keys: dict[bytes, Path] = {}
    for directory, names in owners.items():
        for name in names:
            (body,) = _private_key_bodies(directory / name)
            keys[body] = directory
            assert (directory / name).stat().st_mode & 0o077 == 0, f"{directory / name} is shared"
    files = [p for p in ceremony.root.rglob("*") if p.is_file()]
    assert len(files) > 60
    for path in files:
        flat = b"".join(path.read_bytes().split()).replace(b"\\n", b"")
        for body, home in keys.items():
            if body in flat:
                assert path.parent == home, f"{home.name}'s private key found in {path}"
        if PEM_BODY.search(path.read_bytes()):
            assert path.parent in owners and path.name in owners[path.parent], \
                f"an unexpected private key file: {path}"


def test_every_node_loads_its_config_with_its_own_keys_and_one_genesis(
        ceremony: Ceremony) -> None:
    genesis = ledger_genesis.load(ceremony.public / "genesis.json")
    assert [v.id for v in genesis.validators] == VALIDATORS
    assert {p.id: p.role for p in genesis.participants} == {
        "central-bank": "central_bank", "bank-a": "bank", "bank-b": "bank",
        "regulator": "regulator"}
    keys = {p.id: p.key for p in genesis.participants} | {v.id: v.key for v in genesis.validators}
    for node in NODES:
        config = load_config(ceremony.host(node) / "node.toml")
        assert config.id == node
        assert ledger_genesis.load(config.genesis).hash == genesis.hash
        assert PrivateKey.load(config.ledger_key).public_key == keys[node]
        certificate = load_certificate(config.tls.certificate)
        assert identity_of(certificate).participant_id == node
        key = serialization.load_pem_private_key(config.tls.key.read_bytes(), None)
        assert certificate.public_key() == key.public_key(), f"{node}: certificate not for its key"
        assert [p.address for p in config.validators] == [
            f"127.0.0.1:{ceremony.base_port + i}" for i in range(4)]


def _tampered(ceremony: Ceremony, host: str, tmp_path: Path, **changes: str) -> Path:
    data = json.loads((ceremony.host(host) / "request.json").read_text()) | changes
    path = tmp_path / f"{host}.json"
    path.write_text(json.dumps(data))
    return path


def test_a_request_changed_after_signing_is_refused(ceremony: Ceremony, tmp_path: Path) -> None:
    moved = _tampered(ceremony, "validator-1", tmp_path, address="203.0.113.9:7000")
    with pytest.raises(BadCertificateError, match="signed by its ledger key"):
        KeyRequest.load(moved)
    other = json.loads((ceremony.host("validator-2") / "request.json").read_text())
    stolen = _tampered(ceremony, "validator-1", tmp_path, ledger_key=other["ledger_key"])
    with pytest.raises(BadCertificateError):
        KeyRequest.load(stolen)
    assert main(["pki", "sign", "--ca-dir", str(ceremony.ca), "--out", str(tmp_path / "certs"),
                 str(ceremony.host("bank-a") / "request.json"), str(moved)]) == 1
    assert not (tmp_path / "certs").exists(), "a refused batch must issue no certificate"


def test_a_host_never_replaces_its_keys(ceremony: Ceremony) -> None:
    before = (ceremony.host("bank-a") / "ledger.key").read_bytes()
    assert main(["keys", "generate", "--dir", str(ceremony.host("bank-a")), "--id", "bank-a",
                 "--role", "bank", "--address", "127.0.0.1:1"]) == 1
    assert (ceremony.host("bank-a") / "ledger.key").read_bytes() == before


def test_a_node_without_an_address_is_refused_before_any_key_is_made(tmp_path: Path) -> None:
    assert main(["keys", "generate", "--dir", str(tmp_path / "v9"), "--id", "validator-9",
                 "--role", "validator"]) == 1
    assert not (tmp_path / "v9").exists()


def test_a_bundle_for_a_genesis_without_the_hosts_key_is_refused(
        ceremony: Ceremony, tmp_path: Path) -> None:
    outsider = tmp_path / "outsider"
    main(["keys", "generate", "--dir", str(outsider), "--id", "bank-a", "--role", "bank",
          "--address", "127.0.0.1:1"])
    status = main(["bundle", "--genesis", str(ceremony.public / "genesis.json"),
                   "--ca", str(ceremony.public / "ca.crt"), "--certs",
                   str(ceremony.public / "certs"), "--out", str(tmp_path / "bundles"),
                   str(outsider / "request.json")])
    assert status == 1 and not (tmp_path / "bundles").exists()


def test_the_health_check_fails_for_a_node_that_is_not_serving(ceremony: Ceremony) -> None:
    config = ceremony.host("validator-1") / "node.toml"
    assert main(["health", "--config", str(config), "--timeout", "0.5"]) == 1


@pytest.fixture
def running(ceremony: Ceremony) -> Iterator[Launcher]:
    # The launcher's index, naming each host's node.toml; health checked as the regulator.
    index = {
        "nodes": [{"id": n, "kind": load_config(ceremony.host(n) / "node.toml").kind.value,
                   "address": f"127.0.0.1:{ceremony.base_port + i}",
                   "config": f"hosts/{n}/node.toml"} for i, n in enumerate(NODES)],
        "ca": "hosts/regulator/ca.crt",
        "regulator": {"certificate": "hosts/regulator/tls.crt",
                      "key": "hosts/regulator/tls.key"},
    }
    (ceremony.root / "network.json").write_text(json.dumps(index))
    launcher = Launcher(ceremony.root)
    try:
        launcher.start()
        yield launcher
    finally:
        launcher.stop()


@pytest.mark.slow
def test_nodes_from_the_bundles_settle_a_payment(ceremony: Ceremony, running: Launcher) -> None:
    def client(host: str) -> TlsFiles:
        folder = ceremony.host(host)
        return TlsFiles(folder / "ca.crt", folder / "tls.crt", folder / "tls.key")

    issuer = open_channel(f"127.0.0.1:{ceremony.base_port + NODES.index('central-bank')}",
                          client("central-bank-ops"))
    bank_a = open_channel(f"127.0.0.1:{ceremony.base_port + NODES.index('bank-a')}",
                          client("bank-a-payments"))
    with issuer, bank_a:
        CentralBankClient(issuer).issue("bank-a", 50_000, "bond-1")
        payment = BankClient(bank_a).send("bank-b", 12_500, wait=True)
        assert payment.status == pb.PAYMENT_STATUS_SETTLED, payment
        assert BankClient(bank_a).balance().balance == 37_500
    for node in NODES:  # the check the image's HEALTHCHECK and the probes run
        assert main(["health", "--config", str(ceremony.host(node) / "node.toml"),
                     "--timeout", "10"]) == 0, node
