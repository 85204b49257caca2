"""Keys: Ed25519 and P-256 round trips through PEM, text and proto; bad keys refused early."""

from __future__ import annotations

import base64
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from straits.ledger.v1 import transaction_pb2 as tx_pb

from ledger.errors import BadKeyError
from ledger.keys import KeyType, PrivateKey, PublicKey, load_public_pem
from tests.vectors.samples import ed25519_key, p256_key

BOTH = [pytest.param(ed25519_key(1), id="ed25519"), pytest.param(p256_key(1), id="p256")]


@pytest.mark.parametrize("key", BOTH)
def test_a_key_saved_to_pem_loads_back_and_signs_for_the_same_public_key(key, tmp_path):
    path = tmp_path / "bank.pem"
    key.save(path)
    loaded = PrivateKey.load(path)
    assert loaded.type is key.type
    assert loaded.public_key == key.public_key
    assert key.public_key.verify(loaded.sign(b"payment"), b"payment")


@pytest.mark.parametrize("key", BOTH)
def test_a_saved_private_key_is_readable_by_its_owner_only(key, tmp_path):
    path = tmp_path / "bank.pem"
    path.write_bytes(b"old contents, world readable")
    path.chmod(0o644)
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PrivateKey.load(path).public_key == key.public_key


@pytest.mark.parametrize("key", BOTH)
def test_public_keys_round_trip_through_pem_text_and_proto(key):
    public = key.public_key
    assert load_public_pem(public.to_pem()) == public
    assert PublicKey.from_text(public.to_text()) == public
    assert PublicKey.from_proto(public.to_proto()) == public
    assert public.to_text().startswith(public.type.value + ":")


def test_the_fingerprint_tells_key_types_and_keys_apart():
    prints = {ed25519_key(1).public_key.fingerprint, ed25519_key(2).public_key.fingerprint}
    prints |= {p256_key(1).public_key.fingerprint, p256_key(2).public_key.fingerprint}
    assert len(prints) == 4


def test_ed25519_signatures_are_deterministic_and_p256_ones_randomised_yet_both_verify():
    ed, p = ed25519_key(1), p256_key(1)
    assert ed.sign(b"m") == ed.sign(b"m")
    first, second = p.sign(b"m"), p.sign(b"m")
    assert first != second
    assert p.public_key.verify(first, b"m") and p.public_key.verify(second, b"m")


@pytest.mark.parametrize(
    ("key_type", "data", "says"),
    [
        (KeyType.ED25519, bytes(31), "32-byte"),
        (KeyType.ED25519, bytes(33), "32-byte"),
        (KeyType.ECDSA_P256, bytes(65), "valid ecdsa-p256"),
        (KeyType.ECDSA_P256, b"\x04" + bytes(64), "valid ecdsa-p256"),
        (KeyType.ECDSA_P256, ed25519_key(1).public_key.data, "65-byte"),
        (KeyType.ECDSA_P256, b"", "65-byte"),
    ],
)
def test_bad_public_key_bytes_are_refused_where_they_enter(key_type, data, says):
    with pytest.raises(BadKeyError, match=says):
        PublicKey(key_type, data)


def test_a_compressed_p256_point_is_refused_so_each_key_has_one_encoding():
    point = p256_key(1).cryptography_key.public_key()
    compressed = point.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    with pytest.raises(BadKeyError, match="65-byte"):
        PublicKey(KeyType.ECDSA_P256, compressed)


def test_key_bytes_of_the_wrong_python_type_are_a_bad_key_not_a_crash():
    with pytest.raises(BadKeyError, match="public key bytes"):
        PublicKey(KeyType.ED25519, "not bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("no separator here", "'<type>:<base64>'"),
        ("ed25519:***", "base64"),
        ("rsa:" + base64.b64encode(bytes(32)).decode(), "one of ed25519, ecdsa-p256"),
        ("ed25519:" + base64.b64encode(bytes(16)).decode(), "32-byte"),
    ],
)
def test_text_keys_that_cannot_load_say_what_was_expected(text, says):
    with pytest.raises(BadKeyError, match=says):
        PublicKey.from_text(text)


def test_a_proto_key_without_a_type_is_refused():
    with pytest.raises(BadKeyError, match="KEY_TYPE_ED25519 or KEY_TYPE_ECDSA_P256"):
        PublicKey.from_proto(tx_pb.PublicKey(data=ed25519_key(1).public_key.data))


def test_seeds_and_scalars_out_of_range_are_bad_keys():
    with pytest.raises(BadKeyError, match="32-byte seed"):
        PrivateKey.from_seed(bytes(31))
    with pytest.raises(BadKeyError, match="P-256 scalar"):
        PrivateKey.from_p256_scalar(0)


def test_pem_of_garbage_or_of_another_curve_is_a_bad_key():
    with pytest.raises(BadKeyError, match="PEM private key"):
        PrivateKey.from_pem(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(BadKeyError, match="PEM public key"):
        load_public_pem(b"garbage")
    p384 = ec.derive_private_key(12345, ec.SECP384R1())
    private_pem = p384.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = p384.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(BadKeyError, match="Ed25519 or P-256"):
        PrivateKey.from_pem(private_pem)
    with pytest.raises(BadKeyError, match="Ed25519 or P-256"):
        load_public_pem(public_pem)


def test_a_private_key_never_prints_its_secret():
    key = ed25519_key(1)
    secret = key.cryptography_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    assert secret.hex() not in repr(key)
    assert key.public_key.to_text() in repr(key)
