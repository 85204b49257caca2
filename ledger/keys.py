"""Signing keys: Ed25519 by default, ECDSA P-256 accepted; the key type travels with the key.

A ``PublicKey`` is a value (type + raw bytes) that can be compared, hashed, put in a
genesis file and turned into a verifier. A ``PrivateKey`` signs; both load from and
save to PEM. Verification returns a bool and never raises on a bad signature, so a
batch can carry bad items without spoiling the good ones.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from straits.ledger.v1 import transaction_pb2 as tx_pb

from ledger.errors import BadKeyError, expected


class KeyType(Enum):
    ED25519 = "ed25519"
    ECDSA_P256 = "ecdsa-p256"

    @property
    def proto(self) -> int:
        return _TO_PROTO[self]

    @classmethod
    def from_proto(cls, value: int) -> KeyType:
        try:
            return _FROM_PROTO[value]
        except KeyError:
            raise BadKeyError(expected("KEY_TYPE_ED25519 or KEY_TYPE_ECDSA_P256", value)) from None

    @classmethod
    def parse(cls, text: str) -> KeyType:
        try:
            return cls(text)
        except ValueError:
            names = ", ".join(k.value for k in cls)
            raise BadKeyError(expected(f"one of {names}", text)) from None


_TO_PROTO = {KeyType.ED25519: tx_pb.KEY_TYPE_ED25519, KeyType.ECDSA_P256: tx_pb.KEY_TYPE_ECDSA_P256}
_FROM_PROTO = {v: k for k, v in _TO_PROTO.items()}
_P256 = ec.SECP256R1()
_ECDSA = ec.ECDSA(hashes.SHA256())
# Raw Ed25519 key; uncompressed SEC1 point (0x04 | x | y) for P-256.
_KEY_SIZE = {KeyType.ED25519: 32, KeyType.ECDSA_P256: 65}


@dataclass(frozen=True)
class PublicKey:
    type: KeyType
    data: bytes
    _verifier: object = field(default=None, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        # Parse eagerly: a bad key is refused where it enters, not at first use.
        if not isinstance(self.data, bytes):
            raise BadKeyError(expected("public key bytes", type(self.data).__name__))
        # One encoding per key (raw Ed25519, uncompressed P-256 point), so equal keys are
        # equal values with one fingerprint; a compressed point would be a second name.
        if len(self.data) != _KEY_SIZE[self.type]:
            raise BadKeyError(
                expected(
                    f"a {_KEY_SIZE[self.type]}-byte {self.type.value} public key", len(self.data)
                )
            )
        try:
            if self.type is KeyType.ED25519:
                verifier: object = ed25519.Ed25519PublicKey.from_public_bytes(self.data)
            else:
                verifier = ec.EllipticCurvePublicKey.from_encoded_point(_P256, self.data)
        except ValueError as exc:
            raise BadKeyError(
                expected(f"a valid {self.type.value} public key", self.data.hex())
            ) from exc
        object.__setattr__(self, "_verifier", verifier)

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            if self.type is KeyType.ED25519:
                self._verifier.verify(signature, message)  # type: ignore[attr-defined]
            else:
                self._verifier.verify(signature, message, _ECDSA)  # type: ignore[attr-defined]
        except InvalidSignature:
            return False
        return True

    @cached_property
    def fingerprint(self) -> bytes:
        """Identity for caches: type tag + raw bytes."""
        return self.type.value.encode() + b":" + self.data

    def to_proto(self) -> tx_pb.PublicKey:
        return tx_pb.PublicKey(type=self.type.proto, data=self.data)

    @classmethod
    def from_proto(cls, message: tx_pb.PublicKey) -> PublicKey:
        return cls(KeyType.from_proto(message.type), bytes(message.data))

    def to_text(self) -> str:
        """``<type>:<base64>``, the form used in genesis and config files."""
        return f"{self.type.value}:{base64.b64encode(self.data).decode()}"

    @classmethod
    def from_text(cls, text: str) -> PublicKey:
        kind, sep, data = text.partition(":")
        if not sep:
            raise BadKeyError(expected("'<type>:<base64>'", text))
        try:
            raw = base64.b64decode(data, validate=True)
        except ValueError as exc:
            raise BadKeyError(expected("base64 key bytes", data)) from exc
        return cls(KeyType.parse(kind), raw)

    def to_pem(self) -> bytes:
        return self._verifier.public_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class PrivateKey:
    """A signing key. Not a dataclass: it must never be printed or compared by value."""

    def __init__(self, key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            self.type = KeyType.ED25519
            raw = key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        elif isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
            self.type = KeyType.ECDSA_P256
            raw = key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        else:
            raise BadKeyError(expected("an Ed25519 or P-256 private key", type(key).__name__))
        self.public_key = PublicKey(self.type, raw)

    @classmethod
    def generate(cls, key_type: KeyType = KeyType.ED25519) -> PrivateKey:
        if key_type is KeyType.ED25519:
            return cls(ed25519.Ed25519PrivateKey.generate())
        return cls(ec.generate_private_key(_P256))

    @classmethod
    def from_seed(cls, seed: bytes) -> PrivateKey:
        """Deterministic Ed25519 key from 32 seed bytes: for test vectors and simulations."""
        if len(seed) != 32:
            raise BadKeyError(expected("a 32-byte seed", len(seed)))
        return cls(ed25519.Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_p256_scalar(cls, scalar: int) -> PrivateKey:
        """Deterministic P-256 key from a private scalar: for test vectors only."""
        try:
            return cls(ec.derive_private_key(scalar, _P256))
        except (ValueError, TypeError) as exc:
            raise BadKeyError(expected("a P-256 scalar in 1..n-1", scalar)) from exc

    def sign(self, message: bytes) -> bytes:
        if self.type is KeyType.ED25519:
            return self._key.sign(message)  # type: ignore[call-arg]
        return self._key.sign(message, _ECDSA)  # type: ignore[call-arg]

    @property
    def cryptography_key(self) -> ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey:
        """The underlying key, for building TLS certificates in the services layer."""
        return self._key

    def to_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_pem(cls, data: bytes) -> PrivateKey:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise BadKeyError(f"expected an unencrypted PEM private key: {exc}") from exc
        return cls(key)  # type: ignore[arg-type]

    def save(self, path: Path) -> None:
        # Created owner-only, so the key is never readable by others, not even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(self.to_pem())

    @classmethod
    def load(cls, path: Path) -> PrivateKey:
        return cls.from_pem(Path(path).read_bytes())

    def __repr__(self) -> str:
        return f"PrivateKey({self.type.value}, public={self.public_key.to_text()})"


def load_public_pem(data: bytes) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise BadKeyError(f"expected a PEM public key: {exc}") from exc
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return PublicKey(KeyType.ED25519, raw)
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        raw = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return PublicKey(KeyType.ECDSA_P256, raw)
    raise BadKeyError(expected("an Ed25519 or P-256 public key", type(key).__name__))
