"""Revoked certificates: the CA's revocation list, written by the CA, reloaded by every node.

A certificate stays valid until it expires, so taking a credential back needs a list the
nodes consult on every call: an X.509 CRL signed by the network CA, one PEM file
(``pki/revoked.crl`` in a network directory, named by ``revocations`` in each node's
config). ``straits pki revoke`` adds certificates to it (``add_revocations``); a running
node picks the new list up within a second (``RevocationList``), no restart needed.

A list that does not parse or was not signed by the CA is not trusted: the node keeps the
list it had and logs why, so a damaged file can never quietly un-revoke a certificate.
A missing file means nothing is revoked.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization

from services.common.errors import ConfigError
from services.common.pki import CertificateAuthority

log = logging.getLogger(__name__)

# How long a revocation list is trusted to be current before it must be re-signed: nodes
# reload the file, they do not refuse an old list (the CA may be offline), but
# ``next_update`` tells other readers how fresh it claims to be.
LIST_VALIDITY = dt.timedelta(days=30)
RELOAD_EVERY_S = 1.0


def read_revocations(path: Path, ca_certificate: x509.Certificate) -> dict[int, dt.datetime]:
    """Serial number -> revocation time, from a list the CA signed; ``{}`` when no file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        crl = x509.load_pem_x509_crl(data)
    except ValueError as exc:
        raise ConfigError(f"expected a PEM revocation list, got: {exc}", field=str(path)) from None
    if not crl.is_signature_valid(ca_certificate.public_key()):  # type: ignore[arg-type]
        raise ConfigError("expected a revocation list signed by the network CA, got another "
                          "signature", field=str(path))
    return {entry.serial_number: entry.revocation_date_utc for entry in crl}


def add_revocations(ca: CertificateAuthority, path: Path, certificates: Iterable[x509.Certificate],
                    *, now: dt.datetime) -> list[int]:
    """Adds ``certificates`` to the CA's list at ``path`` (written whole, then renamed into
    place so a node never reads half a file); returns the serials newly revoked."""
    entries = read_revocations(path, ca.certificate)
    added = []
    for certificate in certificates:
        try:
            certificate.verify_directly_issued_by(ca.certificate)
        except (ValueError, TypeError, InvalidSignature) as exc:
            subject = certificate.subject.rfc4514_string()
            raise ConfigError(f"expected a certificate issued by this network's CA, got "
                              f"{subject!r} ({exc or 'bad signature'})",
                              field="certificate") from None
        if certificate.serial_number not in entries:
            entries[certificate.serial_number] = now
            added.append(certificate.serial_number)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(now)
        .next_update(now + LIST_VALIDITY)
    )
    for serial, when in sorted(entries.items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    crl = builder.sign(ca.credential.key, hashes.SHA256())
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    os.replace(partial, path)
    return added


class RevocationList:
    """The serials a node refuses, reloaded when the file changes (checked at most once a
    second, on the calling thread: a stat, and a parse only when the file changed)."""

    def __init__(self, path: Path | None, ca_certificate: x509.Certificate, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._path = path
        self._ca = ca_certificate
        self._clock = clock
        self._lock = threading.Lock()
        self._revoked: frozenset[int] = frozenset()
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) of the loaded file
        self._checked_at = -RELOAD_EVERY_S
        self._refresh()

    def is_revoked(self, serial: int) -> bool:
        if self._path is not None and self._clock() - self._checked_at >= RELOAD_EVERY_S:
            self._refresh()
        return serial in self._revoked

    def _refresh(self) -> None:
        with self._lock:
            self._checked_at = self._clock()
            if self._path is None:
                return
            try:
                stat = self._path.stat()
                seen: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
            except FileNotFoundError:
                seen = None
            if seen == self._seen:
                return
            try:
                revoked = frozenset(read_revocations(self._path, self._ca))
            except ConfigError as error:
                log.error("keeping the previous revocation list (%d serials): %s",
                          len(self._revoked), error)
                self._seen = seen
                return
            self._revoked, self._seen = revoked, seen
            log.info("revocation list %s: %d certificates revoked", self._path, len(revoked))
