"""Deterministic validator keys for simulations, and a verdict cache shared by all nodes.

Every simulated node checks the same signatures; caching the verdict of
(key, signature, message) keeps thousands of seeded runs within CI's minutes
without changing any outcome (a verdict is a pure function of its inputs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ledger import codec
from ledger.keys import PrivateKey, PublicKey


@dataclass(frozen=True)
class CachedKey(PublicKey):
    verdicts: ClassVar[dict[tuple[bytes, bytes, bytes], bool]] = {}

    def verify(self, signature: bytes, message: bytes) -> bool:
        token = (self.data, signature, message)
        verdict = self.verdicts.get(token)
        if verdict is None:
            if len(self.verdicts) > 500_000:
                self.verdicts.clear()
            verdict = self.verdicts[token] = PublicKey.verify(self, signature, message)
        return verdict


def cached(key: PublicKey) -> PublicKey:
    return key if isinstance(key, CachedKey) else CachedKey(key.type, key.data)


def validator_key(name: str) -> PrivateKey:
    return PrivateKey.from_seed(codec.sha256(b"straits-sim-validator:" + name.encode()))


def participant_key(name: str) -> PrivateKey:
    return PrivateKey.from_seed(codec.sha256(b"straits-sim-participant:" + name.encode()))


def validator_names(n: int) -> list[str]:
    return [f"validator-{i:02d}" for i in range(n)]
