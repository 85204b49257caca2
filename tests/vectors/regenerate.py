"""Golden vectors: compute them from fixed inputs and write them as JSON files.

``make vectors`` (``python -m tests.vectors.regenerate``) is the only thing that writes
the files; ``tests/ledger/test_vectors.py`` checks that the current code reproduces each
one exactly. Each section is one function returning plain JSON values (bytes as hex)
and one file ``<section>.json``; to add a vector, add a function to ``SECTIONS``.

P-256 signatures are randomised, so they cannot be recomputed: ``p256_signatures`` is
kept from the existing file while its signatures still verify, and checked by verifying.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ledger import block, codec, transaction
from ledger.keys import PublicKey
from tests.vectors import samples

VECTOR_DIR = Path(__file__).parent

Vectors = dict[str, Any]


def signing_bytes_vectors() -> Vectors:
    cases = [
        (samples.CHAIN_ID, codec.TX, b"body"),
        (samples.CHAIN_ID, codec.HEADER, b""),
        (samples.CHAIN_ID, codec.COMMIT_SEAL, bytes(32)),
        (samples.CHAIN_ID, codec.CONSENSUS, b"\x00\x01"),
        ("", codec.TX, b"x"),
        ("straits-新加坡", codec.TX, b"x"),
    ]
    return {
        "cases": [
            {
                "chain_id": chain,
                "message_type": kind,
                "payload": payload.hex(),
                "signing_bytes": codec.signing_bytes(chain, kind, payload).hex(),
            }
            for chain, kind, payload in cases
        ]
    }


def key_vectors() -> Vectors:
    ed = {f"seed-{n:02x}": _key_entry(samples.ed25519_key(n).public_key) for n in (1, 2, 3, 10)}
    p256 = {f"scalar-{1000 + n}": _key_entry(samples.p256_key(n).public_key) for n in (1, 2)}
    return {"ed25519": ed, "ecdsa_p256": p256}


def _key_entry(key: PublicKey) -> Vectors:
    return {"public_key": key.data.hex(), "text": key.to_text()}


def transaction_vectors() -> Vectors:
    out: Vectors = {}
    for name, body in samples.sample_bodies().items():
        tx = transaction.sign(samples.CHAIN_ID, samples.participant_key(body.signer), body)
        out[name] = {
            "signer": body.signer,
            "body": tx.body_bytes.hex(),
            "signing_bytes": tx.signed.hex(),
            "id": tx.id.hex(),
            "ed25519_signature": tx.signature.hex(),
            "encoded": tx.encode().hex(),
        }
    return out


def merkle_vectors() -> Vectors:
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(5)]
    return {
        str(count): {
            "leaves": [leaf.hex() for leaf in leaves[:count]],
            "root": codec.merkle_root(leaves[:count]).hex(),
        }
        for count in (0, 1, 2, 3, 5)
    }


def sample_block() -> block.Block:
    """Height 7, three transactions, sealed by validators 0..2 of four."""
    bodies = samples.sample_bodies()
    txs = [
        transaction.sign(samples.CHAIN_ID, samples.participant_key(b.signer), b)
        for b in (bodies["issue"], bodies["transfer"], bodies["cancel"])
    ]
    built = block.build(
        chain_id=samples.CHAIN_ID,
        height=7,
        parent_hash=hashlib.sha256(b"block 6").digest(),
        timestamp_ms=1_767_225_600_000,
        proposer="validator-0",
        round=1,
        transactions=txs,
        state_root=hashlib.sha256(b"state after block 7").digest(),
        receipts_root=hashlib.sha256(b"receipts of block 7").digest(),
    )
    seals = [
        block.make_seal(samples.CHAIN_ID, built.hash, f"validator-{n}", samples.validator_key(n))
        for n in range(3)
    ]
    return built.with_seals(seals)


def block_vectors() -> Vectors:
    sealed = sample_block()
    return {
        "header": sealed.header_bytes.hex(),
        "hash": sealed.hash.hex(),
        "transactions_root": sealed.header.transactions_root.hex(),
        "seal_bytes": block.seal_bytes(samples.CHAIN_ID, sealed.hash).hex(),
        "seals": {s.validator: s.signature.hex() for s in sealed.seals},
        "encoded": sealed.encode().hex(),
        "empty_block_header": samples.simple_block().header_bytes.hex(),
    }


def p256_signature_vectors(previous: Vectors | None = None) -> Vectors:
    """Signatures by P-256 key 1 over a transaction's and a seal's signing bytes."""
    key = samples.p256_key(1)
    messages = {
        "transfer": transaction.sign(
            samples.CHAIN_ID, samples.participant_key(samples.ALPHA_BANK), samples.transfer_body()
        ).signed,
        "seal": block.seal_bytes(samples.CHAIN_ID, sample_block().hash),
    }
    out: Vectors = {"public_key": key.public_key.data.hex(), "cases": {}}
    for name, message in messages.items():
        kept = ((previous or {}).get("cases") or {}).get(name)
        signature = bytes.fromhex(kept["signature"]) if kept else b""
        if not key.public_key.verify(signature, message):
            signature = key.sign(message)
        out["cases"][name] = {"message": message.hex(), "signature": signature.hex()}
    return out


def state_root_vectors() -> Vectors:
    """The state root after each of a few blocks: issues, a settled transfer, a transfer
    that queues, the block whose incoming payment lets it settle from the queue, a
    sender limit and a cycle settled by offsetting, and the close of the day."""
    from tests.ledger.conftest import Chain

    chain = Chain()
    steps = [
        ("genesis", []),
        ("issue", [chain.issue("bank-a", 1_000), chain.issue("bank-b", 500)]),
        (
            "transfer settles, transfer queues",
            [
                chain.transfer("bank-a", "bank-b", 300),
                chain.transfer("bank-c", "bank-a", 200),
            ],
        ),
        ("incoming payment releases the queue", [chain.transfer("bank-b", "bank-c", 250)]),
        (
            "a bilateral limit, a cycle within it settles by offsetting",
            [
                chain.set_limit("bank-a", 100, counterparty="bank-c"),
                chain.transfer("bank-a", "bank-c", 2_000),
                chain.transfer("bank-c", "bank-a", 2_000),
                chain.transfer("bank-a", "bank-b", 5_000),
            ],
        ),
        ("the day closes, cancelling the queue", [chain.close_day(1)]),
    ]
    out = [
        {
            "step": "genesis",
            "genesis_hash": chain.state.head_hash.hex(),
            "state_root": chain.state.root().hex(),
        }
    ]
    for name, transactions in steps[1:]:
        execution = chain.commit(*transactions)
        out.append(
            {
                "step": name,
                "height": chain.state.height,
                "block_hash": chain.blocks[-1].hash.hex(),
                "state_root": chain.state.root().hex(),
                "receipts_root": chain.blocks[-1].header.receipts_root.hex(),
                "balances": dict(sorted(chain.state.balances.items())),
                "outcomes": [r.outcome for r in execution.receipts],
                "queue_settlements": [s.transfer_id.hex() for s in execution.settlements],
                "by_offsetting": [s.by_offsetting for s in execution.settlements],
                "day": chain.state.day,
            }
        )
    return {"steps": out}


# Deterministic sections: the test recomputes each and compares it with its file.
SECTIONS: dict[str, Callable[[], Vectors]] = {
    "signing_bytes": signing_bytes_vectors,
    "keys": key_vectors,
    "transactions": transaction_vectors,
    "merkle": merkle_vectors,
    "blocks": block_vectors,
    "state_roots": state_root_vectors,
}


def path_of(section: str) -> Path:
    return VECTOR_DIR / f"{section}.json"


def load(section: str) -> Vectors:
    return json.loads(path_of(section).read_text())


def _write(section: str, vectors: Vectors) -> None:
    path_of(section).write_text(json.dumps(vectors, indent=2, ensure_ascii=False) + "\n")


def main() -> None:
    for section, compute in SECTIONS.items():
        _write(section, compute())
    previous = load("p256_signatures") if path_of("p256_signatures").exists() else None
    _write("p256_signatures", p256_signature_vectors(previous))
    print(f"wrote {len(SECTIONS) + 1} vector files to {VECTOR_DIR}")


if __name__ == "__main__":
    main()
