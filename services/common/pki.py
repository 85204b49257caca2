"""The network's PKI: one CA, and a TLS certificate per participant, node and client.

Every connection in a Straits network is mutual TLS against the network CA, and a
certificate says who its holder is in one place: a SAN URI
``straits://<role>/<participant-id>`` (the common name only labels it for people).
Roles (``ledger.roles.Role``, the same words genesis and node configuration use):

* ``validator``, ``central_bank``, ``bank``, ``regulator``: a participant's own node
  or tool, acting for that participant (the regulator has no node; its tools call
  validators directly);
* ``client``: someone using a participant's node on its behalf (a bank's payment
  system, an operator's CLI, the load tester); the participant id is the one the
  client acts for, and only that participant's node serves it.

TLS keys are ECDSA P-256, apart from the ledger signing keys (``ledger.keys``): a
TLS key sits on every connection and is replaced with its certificate; a signing key
binds the ledger. Each certificate carries both server and client auth, and SANs for
``localhost`` and ``127.0.0.1`` plus any hosts given, so no target name override is
needed on loopback.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ledger.errors import expected
from ledger.roles import Role
from services.common.errors import BadCertificateError

URI_SCHEME = "straits"
DEFAULT_HOSTS = ("localhost", "127.0.0.1")
CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=825)
# Participant ids as they may appear in a URI path without escaping.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Identity:
    """Who holds a certificate: the participant it acts for, and in which role."""

    participant_id: str
    role: Role

    def __post_init__(self) -> None:
        if not _ID.fullmatch(self.participant_id):
            raise BadCertificateError(
                expected("a participant id of letters, digits, '.', '_', '-' (1..64)",
                         self.participant_id),
                field="participant_id",
            )

    @property
    def uri(self) -> str:
        return f"{URI_SCHEME}://{self.role.value}/{self.participant_id}"

    @classmethod
    def from_uri(cls, uri: str) -> Identity:
        prefix = f"{URI_SCHEME}://"
        role, sep, participant = uri.removeprefix(prefix).partition("/")
        if not uri.startswith(prefix) or not sep:
            raise BadCertificateError(expected("straits://<role>/<participant-id>", uri))
        try:
            return cls(participant, Role(role))
        except ValueError:
            roles = ", ".join(r.value for r in Role)
            raise BadCertificateError(expected(f"a role among {roles}", role)) from None


def identity_of(certificate: x509.Certificate) -> Identity:
    """The one Straits identity in the certificate's SAN URIs; refuses none or several."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        raise BadCertificateError(
            "expected a subjectAltName with a straits:// URI, got none") from None
    uris = [u for u in san.value.get_values_for_type(x509.UniformResourceIdentifier)
            if u.startswith(f"{URI_SCHEME}://")]
    if len(uris) != 1:
        raise BadCertificateError(expected("exactly one straits:// URI", uris))
    return Identity.from_uri(uris[0])


def common_name_of(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


@dataclass(frozen=True)
class Credential:
    """A certificate and its private key: what a node or client presents."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def save(self, certificate_path: Path, key_path: Path) -> None:
        certificate_path.write_bytes(self.certificate_pem)
        key_path.write_bytes(self.key_pem)
        key_path.chmod(0o600)

    @classmethod
    def load(cls, certificate_path: Path, key_path: Path) -> Credential:
        certificate = load_certificate(certificate_path)
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise BadCertificateError(expected("an ECDSA private key", type(key).__name__))
        return cls(certificate, key)


def load_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(Path(path).read_bytes())
    except ValueError as exc:
        raise BadCertificateError(f"expected a PEM certificate in {path}: {exc}") from exc


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


@dataclass(frozen=True)
class CertificateAuthority:
    """The network CA. Its key issues every certificate; keep it off the nodes."""

    credential: Credential

    @property
    def certificate(self) -> x509.Certificate:
        return self.credential.certificate

    @classmethod
    def create(cls, network: str, *, now: dt.datetime,
               valid_for: dt.timedelta = CA_VALIDITY) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name(f"Straits network CA ({network})", network)
        public = key.public_key()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + valid_for)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(Credential(certificate, key))

    def issue(
        self,
        identity: Identity,
        *,
        now: dt.datetime,
        name: str = "",
        hosts: tuple[str, ...] = DEFAULT_HOSTS,
        valid_for: dt.timedelta = LEAF_VALIDITY,
        not_before: dt.datetime | None = None,
    ) -> Credential:
        """A fresh key and certificate for ``identity``, usable as TLS server and client.

        ``not_before`` defaults to five minutes before ``now`` to absorb clock skew.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = self.certify(identity, key.public_key(), now=now, name=name, hosts=hosts,
                                   valid_for=valid_for, not_before=not_before)
        return Credential(certificate, key)

    def certify(
        self,
        identity: Identity,
        public: ec.EllipticCurvePublicKey,
        *,
        now: dt.datetime,
        name: str = "",
        hosts: tuple[str, ...] = DEFAULT_HOSTS,
        valid_for: dt.timedelta = LEAF_VALIDITY,
        not_before: dt.datetime | None = None,
    ) -> x509.Certificate:
        """A certificate for a key held elsewhere (a certificate request signed on its host)."""
        organisation = self.certificate.subject.get_attributes_for_oid(
            NameOID.ORGANIZATION_NAME)[0].value
        start = not_before if not_before is not None else now - dt.timedelta(minutes=5)
        alt_names = [x509.UniformResourceIdentifier(identity.uri)]
        alt_names += [general_name(h) for h in hosts]
        return (
            x509.CertificateBuilder()
            .subject_name(_name(name or identity.participant_id, str(organisation)))
            .issuer_name(self.certificate.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(now + valid_for)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False,
                    crl_sign=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.credential.key.public_key()),
                critical=False,
            )
            .sign(self.credential.key, hashes.SHA256())
        )

    def verify(self, certificate: x509.Certificate, *, now: dt.datetime) -> Identity:
        """Checks that this CA signed ``certificate`` and that it is valid at ``now``."""
        try:
            certificate.verify_directly_issued_by(self.certificate)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise BadCertificateError(
                f"expected a certificate issued by {common_name_of(self.certificate)!r}: {exc}"
            ) from exc
        start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        if not start <= now <= end:
            raise BadCertificateError(expected(f"a time within {start}..{end}", now.isoformat()))
        return identity_of(certificate)

    def save(self, certificate_path: Path, key_path: Path) -> None:
        self.credential.save(certificate_path, key_path)

    @classmethod
    def load(cls, certificate_path: Path, key_path: Path) -> CertificateAuthority:
        return cls(Credential.load(certificate_path, key_path))
