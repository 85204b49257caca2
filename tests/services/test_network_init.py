"""``straits network init`` writes a network whose pieces fit: genesis, configs, certificates."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.cli.main import main
from ledger import genesis as ledger_genesis
from ledger.genesis import BIC_PATTERN
from ledger.keys import PrivateKey
from ledger.roles import Role
from services.common.config import load_config
from services.common.errors import ConfigError
from services.common.pki import CertificateAuthority, Identity, load_certificate
from services.common.server import create_server
from services.network.setup import NetworkPlan, bank_bic, bank_ids, init_network
from tests.services.conftest import connect
from wire.tls import TlsFiles, channel_credentials

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("network")
    status = main(["network", "init", "--dir", str(directory), "--validators", "4",
                   "--banks", "3", "--chain-id", "straits-test", "--base-port", "17100"])
    assert status == 0
    return directory


def test_genesis_loads_with_every_participant_and_validator(network: Path) -> None:
    genesis = ledger_genesis.load(network / "genesis.json")
    assert genesis.chain_id == "straits-test"
    assert [v.id for v in genesis.validators] == [f"validator-{i}" for i in range(1, 5)]
    roles = {p.id: p.role for p in genesis.participants}
    assert roles == {"central-bank": "central_bank", "bank-a": "bank", "bank-b": "bank",
                     "bank-c": "bank", "regulator": "regulator"}
    bics = {p.id: p.bic for p in genesis.participants}
    assert bics == {"central-bank": "CBNKSGX0", "bank-a": "BNKASGX0", "bank-b": "BNKBSGX0",
                    "bank-c": "BNKCSGX0", "regulator": ""}


def test_each_node_config_loads_and_its_ledger_key_matches_genesis(network: Path) -> None:
    genesis = ledger_genesis.load(network / "genesis.json")
    keys = {p.id: p.key for p in genesis.participants} | {v.id: v.key for v in genesis.validators}
    index = json.loads((network / "network.json").read_text())
    assert len(index["nodes"]) == 4 + 1 + 3
    ports = set()
    for node in index["nodes"]:
        config = load_config(network / node["config"])
        assert (config.id, config.kind.value, config.listen) == (
            node["id"], node["kind"], node["address"])
        assert PrivateKey.load(config.ledger_key).public_key == keys[config.id], \
            f"{config.id}'s ledger key is not the one in genesis"
        assert [p.address for p in config.validators] == [
            f"127.0.0.1:{17100 + i}" for i in range(4)]
        ports.add(int(config.listen.rpartition(":")[2]))
        ports.add(config.metrics_port)
    assert len(ports) == 2 * 8, "every node needs its own service and metrics port"


def test_every_certificate_verifies_against_the_ca_with_its_identity(network: Path) -> None:
    ca = CertificateAuthority.load(network / "pki" / "ca.crt", network / "pki" / "ca.key")
    now = dt.datetime.now(dt.UTC)
    index = json.loads((network / "network.json").read_text())
    expected_roles = {"validator": Role.VALIDATOR, "central_bank": Role.CENTRAL_BANK,
                      "bank": Role.BANK}
    for node in index["nodes"]:
        config = load_config(network / node["config"])
        identity = ca.verify(load_certificate(config.tls.certificate), now=now)
        assert identity == Identity(node["id"], expected_roles[node["kind"]])
    for client in index["clients"]:
        identity = ca.verify(load_certificate(network / client["certificate"]), now=now)
        assert identity == Identity(client["participant"], Role.CLIENT)
    regulator = ca.verify(load_certificate(network / index["regulator"]["certificate"]), now=now)
    assert regulator == Identity("regulator", Role.REGULATOR)


def test_private_keys_are_readable_by_the_owner_only(network: Path) -> None:
    keys = [*network.glob("nodes/*/*.key"), *network.glob("clients/*/*.key"),
            network / "pki" / "ca.key"]
    assert keys
    loose = [str(k) for k in keys if k.stat().st_mode & 0o077]
    assert not loose, f"keys readable by others: {loose}"


def test_generated_certificates_carry_a_real_mutual_tls_call(network: Path) -> None:
    """A bank node's config serves a bank client's certificate from the same network."""
    config = load_config(network / "nodes" / "bank-a" / "node.toml")
    settings = dataclasses.replace(config.server_settings, listen="127.0.0.1:0")
    server, port = create_server(settings, [])
    server.start()
    try:
        client = TlsFiles(config.tls.ca, network / "clients" / "bank-a" / "client.crt",
                          network / "clients" / "bank-a" / "client.key")
        with connect(f"127.0.0.1:{port}", channel_credentials(client)) as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        server.stop(grace=None)


def test_init_refuses_to_overwrite_a_network(network: Path, capsys) -> None:
    before = (network / "genesis.json").read_bytes()
    assert main(["network", "init", "--dir", str(network)]) == 1
    assert "bad_config" in capsys.readouterr().err
    assert (network / "genesis.json").read_bytes() == before


def test_plan_with_ports_past_the_range_names_base_port(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        init_network(tmp_path, NetworkPlan(base_port=65500), now=NOW)
    assert refused.value.field == "base_port"
    assert not (tmp_path / "genesis.json").exists()


def test_bank_bics_stay_distinct_and_well_formed_past_the_alphabet() -> None:
    ids = bank_ids(5000)
    bics = [bank_bic(i, b, "SG") for i, b in enumerate(ids)]
    assert len(set(bics)) == len(bics)
    assert all(BIC_PATTERN.fullmatch(b) for b in bics)


def test_bank_ids_stay_distinct_past_the_alphabet() -> None:
    ids = bank_ids(30)
    assert ids[:2] == ["bank-a", "bank-b"] and ids[25:28] == ["bank-z", "bank-aa", "bank-ab"]
    assert len(set(ids)) == 30
