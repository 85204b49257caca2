"""A host's key request: what leaves the host so that it can join a network.

``generate_keys`` writes into the host's directory:

    ledger.key      the ledger signing key (not for a ``client``, which signs nothing)
    tls.key         the TLS key
    request.json    the key request: public, to hand to the central bank

A request holds the participant id, its role, a display name, the address its node is
reached at (empty for the regulator and for clients, which run no node), the ledger
public key, a PKCS#10 request for the TLS key naming ``straits://<role>/<id>``, and a
signature by the ledger key over all of it. The CSR is signed by the TLS key, so a
valid request proves that its sender holds both private keys.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ledger.errors import BadKeyError, expected
from ledger.keys import PrivateKey, PublicKey
from ledger.roles import NODE_ROLES, Role
from services.common.errors import BadCertificateError, ConfigError
from services.common.pki import DEFAULT_HOSTS, Identity, general_name

REQUEST_FILE = "request.json"
LEDGER_KEY_FILE = "ledger.key"
TLS_KEY_FILE = "tls.key"
# Domain separation: a request signature can never be taken for a ledger signature.
_SIGNING_PREFIX = b"straits/key-request/v1\x00"


@dataclass(frozen=True)
class KeyRequest:
    participant_id: str
    role: Role
    name: str
    address: str
    ledger_key: PublicKey | None
    csr_pem: str
    signature: bytes = b""

    @property
    def identity(self) -> Identity:
        return Identity(self.participant_id, self.role)

    @property
    def runs_node(self) -> bool:
        return self.role in NODE_ROLES

    @property
    def csr(self) -> x509.CertificateSigningRequest:
        try:
            return x509.load_pem_x509_csr(self.csr_pem.encode())
        except ValueError as exc:
            raise BadCertificateError(
                f"expected a PEM certificate request for {self.participant_id}: {exc}"
            ) from exc

    def _unsigned(self) -> dict[str, str]:
        return {
            "id": self.participant_id,
            "role": self.role.value,
            "name": self.name,
            "address": self.address,
            "ledger_key": self.ledger_key.to_text() if self.ledger_key else "",
            "csr": self.csr_pem,
        }

    def signing_bytes(self) -> bytes:
        canonical = json.dumps(self._unsigned(), sort_keys=True, separators=(",", ":"))
        return _SIGNING_PREFIX + canonical.encode()

    def to_dict(self) -> dict[str, str]:
        return self._unsigned() | {"signature": base64.b64encode(self.signature).decode()}

    def check(self) -> None:
        """Refuses a request whose parts do not belong together or are not signed by
        the keys they name; says which request and what is wrong."""
        who = f"{self.role.value} {self.participant_id}"
        csr = self.csr
        if not csr.is_signature_valid:
            raise BadCertificateError(f"expected the CSR of {who} to be signed by its key")
        if not isinstance(csr.public_key(), ec.EllipticCurvePublicKey):
            raise BadCertificateError(expected(f"an ECDSA TLS key for {who}",
                                               type(csr.public_key()).__name__))
        named = _uris(csr)
        if named != [self.identity.uri]:
            raise BadCertificateError(expected(f"a CSR naming {self.identity.uri}", named))
        if self.runs_node and not self.address:
            raise ConfigError(expected(f"an address for the node of {who}", "none"),
                              field="address")
        if self.role is Role.CLIENT:
            if self.ledger_key is not None:
                raise ConfigError(expected(f"no ledger key for {who}", "one"),
                                  field="ledger_key")
            return
        if self.ledger_key is None:
            raise ConfigError(expected(f"a ledger key for {who}", "none"), field="ledger_key")
        if not self.ledger_key.verify(self.signature, self.signing_bytes()):
            raise BadCertificateError(
                f"expected the request of {who} to be signed by its ledger key")

    @classmethod
    def from_dict(cls, data: object, source: str = "request") -> KeyRequest:
        keys = {"id", "role", "name", "address", "ledger_key", "csr", "signature"}
        if not isinstance(data, dict) or set(data) != keys or not all(
                isinstance(v, str) for v in data.values()):
            raise ConfigError(expected(f"an object of strings with keys {sorted(keys)}",
                                       data if not isinstance(data, dict) else sorted(data)),
                              field=source)
        try:
            role = Role(data["role"])
            ledger_key = PublicKey.from_text(data["ledger_key"]) if data["ledger_key"] else None
            signature = base64.b64decode(data["signature"], validate=True)
        except ValueError as exc:
            raise ConfigError(f"expected a valid role, key and signature: {exc}",
                              field=source) from exc
        except BadKeyError as exc:
            raise ConfigError(exc.detail, field=f"{source}.ledger_key") from exc
        return cls(data["id"], role, data["name"], data["address"], ledger_key, data["csr"],
                   signature)

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> KeyRequest:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"expected a key request in {path}: {exc}") from exc
        request = cls.from_dict(data, source=str(path))
        request.check()
        return request


def _uris(csr: x509.CertificateSigningRequest) -> list[str]:
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(u) for u in san.get_values_for_type(x509.UniformResourceIdentifier)]


def generate_keys(directory: Path, identity: Identity, *, name: str, address: str = "",
                  hosts: tuple[str, ...] = ()) -> KeyRequest:
    """Writes the host's private keys and its key request into ``directory``.

    ``hosts``: names and addresses the TLS certificate is for, besides loopback and the
    host of ``address``. Refuses a directory that already holds keys, so a second run
    never replaces keys a network may already trust.
    """
    if identity.role in NODE_ROLES and not address:
        raise ConfigError(expected(f"the address peers reach {identity.participant_id} at "
                                   "(host:port)", "none"), field="address")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for file in (LEDGER_KEY_FILE, TLS_KEY_FILE, REQUEST_FILE):
        if (directory / file).exists():
            raise ConfigError(f"expected a directory without keys, found {directory / file}",
                              field="dir")
    address_host = address.rpartition(":")[0].strip("[]")
    all_hosts = tuple(dict.fromkeys((*DEFAULT_HOSTS, *([address_host] if address_host else []),
                                     *hosts)))
    tls_key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(x509.NameOID.COMMON_NAME, identity.participant_id)]))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(identity.uri)]
                + [general_name(h) for h in all_hosts]),
            critical=False)
        .sign(tls_key, hashes.SHA256())
    )
    csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    ledger_key = None if identity.role is Role.CLIENT else PrivateKey.generate()
    request = KeyRequest(identity.participant_id, identity.role, name, address,
                         ledger_key.public_key if ledger_key else None, csr_pem)
    if ledger_key is not None:
        request = dataclasses.replace(request, signature=ledger_key.sign(request.signing_bytes()))
        ledger_key.save(directory / LEDGER_KEY_FILE)
    _save_tls_key(tls_key, directory / TLS_KEY_FILE)
    request.save(directory / REQUEST_FILE)
    return request


def _save_tls_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    # Created owner-only, like a ledger key: never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))


def requested_hosts(request: KeyRequest) -> tuple[str, ...]:
    """The DNS names and IP addresses the request's CSR asks the certificate to carry."""
    san = request.csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    names += [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    return tuple(names)

