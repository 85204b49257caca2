"""Canonical bytes: what is signed, what is hashed, and how messages decode.

Every signed byte string in Straits is built by ``signing_bytes`` and nothing
else, so a signature made for one chain or one message type can never be
replayed as another. Layout (all integers big-endian):

    b"STRAITS1" | u16 len(chain_id) | chain_id | u16 len(type) | type | payload

Hashes are SHA-256. A transaction id is ``sha256(signing_bytes(chain, TX, body))``:
it covers the body and the chain, never the signature. A block hash is
``sha256(signing_bytes(chain, HEADER, header_bytes))``.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from typing import TypeVar

from google.protobuf.message import DecodeError as ProtoDecodeError
from google.protobuf.message import Message

from ledger.errors import DecodeError

MAGIC = b"STRAITS1"

# Message types: the second field of every signed byte string.
TX = "transaction"
HEADER = "header"
COMMIT_SEAL = "commit-seal"
CONSENSUS = "consensus"

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_U16 = struct.Struct(">H")

M = TypeVar("M", bound=Message)


@functools.lru_cache(maxsize=64)
def _prefix(chain_id: str, message_type: str) -> bytes:
    chain = chain_id.encode()
    kind = message_type.encode()
    return MAGIC + _U16.pack(len(chain)) + chain + _U16.pack(len(kind)) + kind


def signing_bytes(chain_id: str, message_type: str, payload: bytes) -> bytes:
    """The one function that builds a byte string to sign (see module docstring)."""
    return _prefix(chain_id, message_type) + payload


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def transaction_id(chain_id: str, body: bytes) -> bytes:
    return hashlib.sha256(_prefix(chain_id, TX) + body).digest()


def block_hash(chain_id: str, header: bytes) -> bytes:
    return hashlib.sha256(_prefix(chain_id, HEADER) + header).digest()


def merkle_root(leaves: list[bytes]) -> bytes:
    """Binary SHA-256 Merkle root with domain-separated leaves and nodes.

    Leaves are hashed as H(0x00 | leaf) and inner nodes as H(0x01 | left | right),
    so a leaf can never pass for a node (the second-preimage trap). An odd node at
    the end of a level is carried up unchanged rather than duplicated, so two
    different lists can never share a root (the duplicate-last-leaf trap).
    """
    if not leaves:
        return EMPTY_ROOT
    sha = hashlib.sha256
    level = [sha(b"\x00" + leaf).digest() for leaf in leaves]
    while len(level) > 1:
        # zip of one iterator with itself pairs (0, 1), (2, 3), ...; an odd last is left.
        pairs = iter(level)
        nxt = [
            sha(b"\x01" + left + right).digest()
            for left, right in zip(pairs, pairs, strict=False)
        ]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def decode(message_cls: type[M], data: bytes, *, what: str | None = None) -> M:
    """Parse ``data`` as ``message_cls`` or raise ``DecodeError`` naming what failed."""
    message = message_cls()
    try:
        message.ParseFromString(data)
    except (ProtoDecodeError, ValueError, TypeError) as exc:
        name = what or message_cls.DESCRIPTOR.name
        raise DecodeError(f"expected a serialised {name}, got undecodable bytes ({exc})") from exc
    return message


def encode(message: Message) -> bytes:
    """Deterministic serialisation (map order fixed) for anything we hash or sign."""
    return message.SerializeToString(deterministic=True)
