"""Golden vectors: today's code must reproduce every stored byte, and decode what is stored.

A failure here means the wire or signing format changed: every deployed node would
disagree with this code. If the change is intended, run ``make vectors`` and review
the diff of ``tests/vectors/*.json`` like any other format change.
"""

from __future__ import annotations

import pytest

from ledger import block, codec
from ledger.keys import PublicKey
from ledger.transaction import Transaction
from tests.vectors import regenerate, samples


def _differences(stored: object, current: object, path: str = "") -> list[str]:
    if isinstance(stored, dict) and isinstance(current, dict):
        out = [f"{path}.{k}: missing now" for k in stored.keys() - current.keys()]
        out += [f"{path}.{k}: new, not in the vectors" for k in current.keys() - stored.keys()]
        for k in stored.keys() & current.keys():
            out += _differences(stored[k], current[k], f"{path}.{k}")
        return out
    if isinstance(stored, list) and isinstance(current, list) and len(stored) == len(current):
        return [
            d
            for i, (s, c) in enumerate(zip(stored, current, strict=True))
            for d in _differences(s, c, f"{path}[{i}]")
        ]
    return [] if stored == current else [f"{path}: stored {stored!r}, now {current!r}"]


@pytest.mark.parametrize("section", sorted(regenerate.SECTIONS))
def test_current_code_reproduces_every_stored_vector_exactly(section):
    differences = _differences(regenerate.load(section), regenerate.SECTIONS[section]())
    assert not differences, f"{section} vectors changed:\n" + "\n".join(differences[:20])


@pytest.mark.parametrize("name", sorted(regenerate.load("transactions")))
def test_stored_transaction_bytes_decode_to_the_stored_id_and_verify(name):
    vector = regenerate.load("transactions")[name]
    tx = Transaction.decode(samples.CHAIN_ID, bytes.fromhex(vector["encoded"]))
    assert tx.id.hex() == vector["id"]
    assert tx.signed.hex() == vector["signing_bytes"]
    assert samples.participant_key(vector["signer"]).public_key.verify(tx.signature, tx.signed)


def test_stored_block_decodes_to_its_hash_and_its_seals_make_a_quorum():
    vector = regenerate.load("blocks")
    sealed = block.Block.decode(bytes.fromhex(vector["encoded"]), chain_id=samples.CHAIN_ID)
    assert sealed.hash.hex() == vector["hash"]
    assert sealed.header_bytes.hex() == vector["header"]
    validators = {f"validator-{n}": samples.validator_key(n).public_key for n in range(4)}
    block.verify_seals(sealed, validators)


@pytest.mark.parametrize("case", ["transfer", "seal"])
def test_stored_p256_signatures_verify_with_the_key_derived_from_the_fixed_scalar(case):
    vector = regenerate.load("p256_signatures")
    key = samples.p256_key(1).public_key
    assert key.data.hex() == vector["public_key"], "P-256 key derivation changed"
    stored = vector["cases"][case]
    current = regenerate.p256_signature_vectors()["cases"][case]
    assert stored["message"] == current["message"], f"the {case} signing bytes changed"
    message, signature = bytes.fromhex(stored["message"]), bytes.fromhex(stored["signature"])
    assert key.verify(signature, message)
    assert not key.verify(signature, message + b"\x00"), (
        "a P-256 signature verified the wrong bytes"
    )


def test_stored_public_keys_load_from_their_text_form():
    for family in regenerate.load("keys").values():
        for entry in family.values():
            key = PublicKey.from_text(entry["text"])
            assert key.data.hex() == entry["public_key"]


def test_merkle_vectors_cover_empty_single_even_and_odd_lists():
    vectors = regenerate.load("merkle")
    assert sorted(int(n) for n in vectors) == [0, 1, 2, 3, 5]
    assert vectors["0"]["root"] == codec.EMPTY_ROOT.hex()
