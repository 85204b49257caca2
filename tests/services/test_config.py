"""A node config loads into frozen values, and every mistake names its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.roles import Role
from services.common.config import load_config, parse_config, render_config
from services.common.errors import ConfigError


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    for name in ("genesis.json", "ledger.key", "ca.crt", "tls.crt", "tls.key"):
        (tmp_path / name).write_text("placeholder\n")
    return tmp_path


def document(**changes: object) -> dict:
    base: dict = {
        "kind": "bank",
        "id": "bank-a",
        "listen": "127.0.0.1:7105",
        "data_dir": "data",
        "genesis": "genesis.json",
        "ledger_key": "ledger.key",
        "metrics_port": 7205,
        "tls": {"ca": "ca.crt", "certificate": "tls.crt", "key": "tls.key"},
        "validators": [{"id": "validator-1", "address": "127.0.0.1:7100"},
                       {"id": "validator-2", "address": "localhost:7101"}],
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_bank_node_config_resolves_paths_beside_the_file(node_dir: Path) -> None:
    config = parse_config(document(), node_dir)
    assert config.kind is Role.BANK
    assert config.tls.key == node_dir / "tls.key"
    assert config.data_dir == node_dir / "data"
    assert [p.id for p in config.peers] == ["validator-1", "validator-2"]


def test_rendered_config_loads_back_equal(node_dir: Path) -> None:
    config = parse_config(document(kind="validator", id="validator-1"), node_dir)
    path = node_dir / "node.toml"
    path.write_text(render_config(config, node_dir))
    loaded = load_config(path)
    assert loaded == config
    assert [p.id for p in loaded.peers] == ["validator-2"], "a validator's peers exclude itself"


@pytest.mark.parametrize(("changes", "field"), [
    ({"kind": "miner"}, "kind"),
    ({"id": None}, "id"),
    ({"listen": "127.0.0.1"}, "listen"),
    ({"listen": "127.0.0.1:70000"}, "listen"),
    ({"metrics_port": "9100"}, "metrics_port"),
    ({"ledger_key": "missing.key"}, "ledger_key"),
    ({"tls": {"ca": "ca.crt", "certificate": "tls.crt"}}, "tls.key"),
    ({"tls": {"ca": "ca.crt", "certificate": "tls.crt", "key": "tls.key", "pin": "x"}},
     "tls.pin"),
    ({"validators": []}, "validators"),
    ({"validators": [{"id": "validator-1", "address": "nowhere"}]}, "validators[0].address"),
    ({"validators": [{"id": "v", "address": "h:1"}, {"id": "v", "address": "h:2"}]},
     "validators"),
    ({"data_dri": "data"}, "data_dri"),
], ids=lambda v: str(v) if isinstance(v, str) else None)
def test_each_mistake_names_its_field(node_dir: Path, changes: dict, field: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(document(**changes), node_dir)
    assert refused.value.field == field, f"expected the error to name {field}: {refused.value}"


@pytest.mark.parametrize("kind", [Role.REGULATOR, Role.CLIENT])
def test_a_role_that_runs_no_node_is_refused_as_a_nodes_kind(node_dir: Path, kind: Role) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(document(kind=kind.value), node_dir)
    assert refused.value.field == "kind"
    assert "validator, central_bank, bank" in refused.value.detail


def test_config_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text("kind = \n")
    with pytest.raises(ConfigError, match="TOML"):
        load_config(path)
