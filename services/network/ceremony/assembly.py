"""Genesis from public keys only, and one bundle of public files per host.

``assemble_genesis`` reads nothing but checked key requests: validators from the
``validator`` requests (in the order given), participants from the central bank's,
the banks' and the regulator's. ``write_bundles`` writes, for each request, a
directory named after it holding only public files:

    ca.crt, tls.crt                    every bundle
    genesis.json, node.toml            a node's bundle (validator, central bank, bank)

``node.toml`` names ``ledger.key`` and ``tls.key`` beside it: the files the host
generated and kept. Copy the bundle into the host's directory and the node starts.
Nodes listen on ``listen_host`` (default ``0.0.0.0``: a host's firewall decides who
reaches them) at their request's port, their metrics on ``metrics_port``; ``data_dir``
may be absolute, as in a container whose data lives on a volume.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from ledger.errors import expected
from ledger.genesis import (
    Currency,
    Genesis,
    Parameters,
    ParticipantSpec,
    ValidatorSpec,
)
from ledger.roles import PARTICIPANT_ROLES, Role
from services.common.errors import ConfigError
from services.common.pki import identity_of, load_certificate
from services.network.ceremony.authority import certificate_name
from services.network.ceremony.request import LEDGER_KEY_FILE, TLS_KEY_FILE, KeyRequest
from services.network.setup import REVOCATIONS

DEFAULT_METRICS_PORT = 9100


def assemble_genesis(requests: list[KeyRequest], *, chain_id: str, currency: str,
                     decimals: int, genesis_time_ms: int,
                     parameters: Parameters | None = None) -> Genesis:
    for request in requests:
        request.check()
    validators = [ValidatorSpec(r.participant_id, r.ledger_key)
                  for r in requests if r.role is Role.VALIDATOR and r.ledger_key]
    participants = [ParticipantSpec(r.participant_id, r.role, r.name, r.ledger_key)
                    for r in requests if r.role in PARTICIPANT_ROLES and r.ledger_key]
    genesis = Genesis(
        chain_id=chain_id,
        currency=Currency(currency, decimals),
        genesis_time_ms=genesis_time_ms,
        participants=tuple(participants),
        validators=tuple(validators),
        parameters=parameters or Parameters(),
    )
    # Through from_dict, so assembly never writes a genesis the nodes would refuse.
    return Genesis.from_dict(genesis.to_dict())


def bundle_name(request: KeyRequest) -> str:
    return certificate_name(request).removesuffix(".crt")


def write_bundles(out: Path, *, genesis_path: Path, ca_certificate: Path, certificates: Path,
                  requests: list[KeyRequest], data_dir: str = "data",
                  metrics_port: int = DEFAULT_METRICS_PORT,
                  listen_host: str = "0.0.0.0") -> list[Path]:
    """One directory per request under ``out``; checks everything before writing."""
    genesis = Genesis.from_dict(json.loads(Path(genesis_path).read_text()))
    ca = load_certificate(ca_certificate)
    keys = {p.id: p.key for p in genesis.participants} | {v.id: v.key for v in genesis.validators}
    nodes = [r for r in requests if r.runs_node]
    addresses = {r.participant_id: r.address for r in nodes if r.role is Role.VALIDATOR}
    missing = [v.id for v in genesis.validators if v.id not in addresses]
    if missing:
        raise ConfigError(expected("a request from every validator in genesis", missing),
                          field="requests")
    plan = []
    for request in requests:
        request.check()
        if request.ledger_key is not None and keys.get(request.participant_id) != \
                request.ledger_key:
            raise ConfigError(
                expected(f"genesis to hold the ledger key of {request.participant_id}",
                         "another key or none"), field="genesis")
        certificate_path = Path(certificates) / certificate_name(request)
        certificate = load_certificate(certificate_path)
        try:
            certificate.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise ConfigError(f"expected {certificate_path} to be issued by the network CA: "
                              f"{exc}", field="certificates") from exc
        if identity_of(certificate) != request.identity or certificate.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != request.csr.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
            raise ConfigError(expected(f"the certificate of {request.identity.uri}",
                                       str(certificate_path)), field="certificates")
        plan.append((request, certificate_path))

    written = []
    validators = [(v.id, addresses[v.id]) for v in genesis.validators]
    for request, certificate_path in plan:
        folder = Path(out) / bundle_name(request)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ca_certificate, folder / "ca.crt")
        shutil.copyfile(certificate_path, folder / "tls.crt")
        if request.runs_node:
            shutil.copyfile(genesis_path, folder / "genesis.json")
            (folder / "node.toml").write_text(
                render_node_config(request, validators, data_dir, metrics_port, listen_host))
        written.append(folder)
    return written


def render_node_config(request: KeyRequest, validators: list[tuple[str, str]], data_dir: str,
                       metrics_port: int, listen_host: str = "0.0.0.0") -> str:
    """The node's TOML (the format ``services.common.config`` reads), paths beside the file."""
    port = request.address.rpartition(":")[2]

    def value(text: str | int) -> str:
        return json.dumps(text)

    lines = [
        "# Straits node configuration from the key ceremony. Relative paths are from",
        "# this file's directory, where the host keeps ledger.key and tls.key.",
        f"kind = {value(request.role.value)}",
        f"id = {value(request.participant_id)}",
        f"listen = {value(f'{listen_host}:{port}')}",
        f"data_dir = {value(data_dir)}",
        'genesis = "genesis.json"',
        f"ledger_key = {value(LEDGER_KEY_FILE)}",
        f"metrics_port = {metrics_port}",
        # The CA's revocation list, copied here from the CA host after `straits pki revoke`.
        f"revocations = {value(REVOCATIONS)}",
        "",
        "[tls]",
        'ca = "ca.crt"',
        'certificate = "tls.crt"',
        f"key = {value(TLS_KEY_FILE)}",
    ]
    for validator_id, address in validators:
        lines += ["", "[[validators]]", f"id = {value(validator_id)}",
                  f"address = {value(address)}"]
    return "\n".join(lines) + "\n"
