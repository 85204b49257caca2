"""The central bank's side of the ceremony: the network CA and the certificates it signs.

``create_authority`` writes ``ca.crt`` and ``ca.key`` into the CA's own directory (on
the central bank's CA host, never on a node). ``sign_requests`` checks every request
(both of its signatures, the identity its CSR names) before issuing anything, so a
bad request in a batch leaves no certificate behind, and writes one certificate per
request: ``<id>.crt`` for a node or a participant's tool, ``<id>.client.crt`` for a
client acting for ``<id>``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ledger.errors import expected
from ledger.roles import Role
from services.common.errors import ConfigError
from services.common.pki import CertificateAuthority
from services.network.ceremony.request import KeyRequest, requested_hosts

CA_CERTIFICATE = "ca.crt"
CA_KEY = "ca.key"


def certificate_name(request: KeyRequest) -> str:
    """The certificate's file name: one per participant and role, ids never collide."""
    suffix = ".client" if request.role is Role.CLIENT else ""
    return f"{request.participant_id}{suffix}.crt"


def create_authority(directory: Path, chain_id: str, *, now: dt.datetime) -> Path:
    """A new network CA in ``directory``; refuses to replace one."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / CA_KEY).exists():
        raise ConfigError(f"expected a directory without a CA, found {directory / CA_KEY}",
                          field="dir")
    CertificateAuthority.create(chain_id, now=now).save(directory / CA_CERTIFICATE,
                                                        directory / CA_KEY)
    return directory / CA_CERTIFICATE


def sign_requests(ca_directory: Path, requests: list[KeyRequest], out: Path, *,
                  now: dt.datetime) -> list[Path]:
    """Issues a TLS certificate for each request into ``out``; all or none."""
    ca = CertificateAuthority.load(Path(ca_directory) / CA_CERTIFICATE,
                                   Path(ca_directory) / CA_KEY)
    names = [certificate_name(r) for r in requests]
    if len(set(names)) != len(names):
        raise ConfigError(expected("one request per participant and role", names),
                          field="requests")
    for request in requests:
        request.check()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for request, name in zip(requests, names, strict=True):
        public = request.csr.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):  # refused by check() already
            raise ConfigError(expected("an ECDSA key", type(public).__name__), field=name)
        certificate = ca.certify(request.identity, public, now=now, name=request.name,
                                 hosts=requested_hosts(request))
        (out / name).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        written.append(out / name)
    return written
