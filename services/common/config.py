"""Per-node configuration: one TOML file per node, loaded into frozen values.

A file names the node's role (``kind``, one of ``ledger.roles.NODE_ROLES``) and its
participant id, where it listens, where its data, keys, certificates and genesis are,
and the validators' addresses. Relative paths
are resolved against the file's own directory, so a network directory can move as a
whole. Every problem is a ``ConfigError`` whose ``field`` names the bad key
(``tls.key``, ``validators[2].address``); unknown keys are refused so that a typo
never silently falls back to a default.

    kind = "validator"            # validator | central_bank | bank
    id = "validator-1"
    listen = "127.0.0.1:7100"
    data_dir = "data"
    genesis = "../genesis.json"
    ledger_key = "ledger.key"
    metrics_port = 9100           # optional; 0 or absent: no metrics endpoint

    [tls]
    ca = "../pki/ca.crt"
    certificate = "tls.crt"
    key = "tls.key"

    [[validators]]                # every validator, this one included
    id = "validator-1"
    address = "127.0.0.1:7100"
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.errors import expected
from ledger.roles import NODE_ROLES, Role
from services.common.errors import ConfigError
from services.common.server import ServerSettings
from wire.tls import TlsFiles


@dataclass(frozen=True)
class Peer:
    id: str
    address: str


@dataclass(frozen=True)
class NodeConfig:
    kind: Role  # one of NODE_ROLES
    id: str
    listen: str
    data_dir: Path
    genesis: Path
    ledger_key: Path
    tls: TlsFiles
    validators: tuple[Peer, ...]
    metrics_port: int = 0
    # The CA's revocation list (``straits pki revoke``); None: this node revokes nothing.
    revocations: Path | None = None

    @property
    def server_settings(self) -> ServerSettings:
        return ServerSettings(participant_id=self.id, listen=self.listen, tls=self.tls,
                              revocations=self.revocations)

    @property
    def peers(self) -> tuple[Peer, ...]:
        """The other validators (all of them, for a bank or central-bank node)."""
        return tuple(p for p in self.validators if p.id != self.id)


_TOP = ("kind", "id", "listen", "data_dir", "genesis", "ledger_key", "metrics_port",
        "revocations", "tls", "validators")
_TLS = ("ca", "certificate", "key")
_PEER = ("id", "address")


def _refuse_unknown(table: Mapping[str, Any], known: tuple[str, ...], prefix: str) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(expected(f"one of {', '.join(known)}", key), field=prefix + key)


def _string(table: Mapping[str, Any], key: str, field: str) -> str:
    if key not in table:
        raise ConfigError(f"expected {key!r} to be set, got nothing", field=field)
    value = table[key]
    if not isinstance(value, str) or not value:
        raise ConfigError(expected("a non-empty string", value), field=field)
    return value


def _address(table: Mapping[str, Any], key: str, field: str) -> str:
    value = _string(table, key, field)
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(expected("host:port with a port in 0..65535", value), field=field)
    return value


def _existing_file(table: Mapping[str, Any], key: str, field: str, base: Path) -> Path:
    path = base / _string(table, key, field)
    if not path.is_file():
        raise ConfigError(f"expected an existing file, got {str(path)!r}", field=field)
    return path


def _table(parent: Mapping[str, Any], key: str, field: str) -> Mapping[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise ConfigError(expected("a table", value), field=field)
    return value


def parse_config(document: Mapping[str, Any], base: Path) -> NodeConfig:
    """Checks a parsed document field by field; paths resolve against ``base``."""
    _refuse_unknown(document, _TOP, "")
    kind_text = _string(document, "kind", "kind")
    if kind_text not in NODE_ROLES:
        kinds = ", ".join(k.value for k in NODE_ROLES)
        raise ConfigError(expected(f"one of {kinds}", kind_text), field="kind")
    kind = Role(kind_text)
    tls = _table(document, "tls", "tls")
    _refuse_unknown(tls, _TLS, "tls.")
    validators = document.get("validators")
    if not isinstance(validators, list) or not validators:
        raise ConfigError(expected("at least one [[validators]] entry", validators),
                          field="validators")
    peers = []
    for i, entry in enumerate(validators):
        where = f"validators[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(expected("a table", entry), field=where)
        _refuse_unknown(entry, _PEER, where + ".")
        peers.append(Peer(_string(entry, "id", where + ".id"),
                          _address(entry, "address", where + ".address")))
    ids = [p.id for p in peers]
    if len(set(ids)) != len(ids):
        raise ConfigError(expected("distinct validator ids", ids), field="validators")
    metrics_port = document.get("metrics_port", 0)
    if isinstance(metrics_port, bool) or not isinstance(metrics_port, int) \
            or not 0 <= metrics_port <= 65535:
        raise ConfigError(expected("a port in 0..65535", metrics_port), field="metrics_port")
    return NodeConfig(
        kind=kind,
        id=_string(document, "id", "id"),
        listen=_address(document, "listen", "listen"),
        data_dir=base / _string(document, "data_dir", "data_dir"),
        genesis=_existing_file(document, "genesis", "genesis", base),
        ledger_key=_existing_file(document, "ledger_key", "ledger_key", base),
        tls=TlsFiles(
            ca=_existing_file(tls, "ca", "tls.ca", base),
            certificate=_existing_file(tls, "certificate", "tls.certificate", base),
            key=_existing_file(tls, "key", "tls.key", base),
        ),
        validators=tuple(peers),
        metrics_port=metrics_port,
        # May not exist yet: a network that never revoked a certificate has no list.
        revocations=(base / _string(document, "revocations", "revocations")
                     if "revocations" in document else None),
    )


def load_config(path: Path) -> NodeConfig:
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"expected a config file, got no file at {str(path)!r}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"expected TOML in {path}: {exc}") from exc
    return parse_config(document, path.parent)


def _toml_value(value: str | int) -> str:
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(value)


def render_config(config: NodeConfig, base: Path) -> str:
    """The TOML text of ``config`` with paths relative to ``base`` (the file's directory)."""

    def rel(path: Path) -> str:
        return Path(os.path.relpath(path, base)).as_posix()

    lines = [
        "# Straits node configuration. Relative paths are from this file's directory.",
        f"kind = {_toml_value(config.kind.value)}",
        f"id = {_toml_value(config.id)}",
        f"listen = {_toml_value(config.listen)}",
        f"data_dir = {_toml_value(rel(config.data_dir))}",
        f"genesis = {_toml_value(rel(config.genesis))}",
        f"ledger_key = {_toml_value(rel(config.ledger_key))}",
        f"metrics_port = {config.metrics_port}",
        *([f"revocations = {_toml_value(rel(config.revocations))}"]
          if config.revocations is not None else []),
        "",
        "[tls]",
        f"ca = {_toml_value(rel(config.tls.ca))}",
        f"certificate = {_toml_value(rel(config.tls.certificate))}",
        f"key = {_toml_value(rel(config.tls.key))}",
    ]
    for peer in config.validators:
        lines += ["", "[[validators]]", f"id = {_toml_value(peer.id)}",
                  f"address = {_toml_value(peer.address)}"]
    return "\n".join(lines) + "\n"
