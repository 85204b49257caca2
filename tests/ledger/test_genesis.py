"""Genesis files: load, save, and a refusal that names the bad field."""

from __future__ import annotations

import copy
import json

import pytest

from ledger.errors import GenesisError
from ledger.genesis import Genesis, load
from ledger.keys import KeyType, PrivateKey
from ledger.state import State
from tests.ledger.conftest import genesis_dict, key


def test_a_saved_genesis_loads_back_equal_with_the_same_hash(tmp_path):
    genesis = Genesis.from_dict(genesis_dict())
    genesis.save(tmp_path / "genesis.json")
    loaded = load(tmp_path / "genesis.json")
    assert loaded == genesis and loaded.hash == genesis.hash
    assert loaded.central_bank.id == "central-bank"
    assert loaded.parameters.max_transaction_lifetime == 256


def test_omitted_parameters_take_their_defaults():
    data = genesis_dict()
    del data["parameters"]
    assert Genesis.from_dict(data).parameters.max_block_transactions == 2000


def test_the_genesis_hash_depends_on_every_field():
    base = Genesis.from_dict(genesis_dict())
    other = genesis_dict()
    other["participants"][1]["name"] = "Renamed"
    assert Genesis.from_dict(other).hash != base.hash
    assert Genesis.from_dict(genesis_dict("another-chain")).hash != base.hash


def test_genesis_state_starts_empty_at_height_zero_on_the_genesis_hash():
    genesis = Genesis.from_dict(genesis_dict())
    state = State.genesis(genesis)
    assert (state.height, state.head_hash, state.supply) == (0, genesis.hash, 0)
    assert set(state.balances) == {"bank-a", "bank-b", "bank-c"}
    assert state.validators_for(1) == {v.id: v.key for v in genesis.validators}
    assert state.root() == State.genesis(Genesis.from_dict(genesis_dict())).root()


def _broken(change) -> dict:
    data = copy.deepcopy(genesis_dict())
    change(data)
    return data


CASES = [
    ("chain_id", lambda d: d.pop("chain_id")),
    ("chain_id", lambda d: d.update(chain_id="")),
    ("currency.code", lambda d: d["currency"].update(code="sgd")),
    ("currency.decimals", lambda d: d["currency"].update(decimals=-1)),
    ("currency.decimals", lambda d: d["currency"].update(decimals=True)),
    ("genesis_time_ms", lambda d: d.update(genesis_time_ms="soon")),
    ("participants", lambda d: d.update(participants=[])),
    ("participants[2].key", lambda d: d["participants"][2].update(key="ed25519:AAAA")),
    ("participants[2].key", lambda d: d["participants"][2].update(key="rsa:AAAA")),
    ("participants[1].role", lambda d: d["participants"][1].update(role="shadow_bank")),
    ("participants[3].id", lambda d: d["participants"][3].update(id="bank-a")),
    ("participants[0].colour", lambda d: d["participants"][0].update(colour="red")),
    ("participants[4].name", lambda d: d["participants"][4].pop("name")),
    ("participants", lambda d: d["participants"][0].update(role="bank")),
    (
        "participants",
        lambda d: d["participants"][1].update(role="central_bank"),
    ),
    ("validators", lambda d: d.update(validators={})),
    ("validators[1].id", lambda d: d["validators"][1].update(id="validator-1")),
    ("validators[0].key", lambda d: d["validators"][0].update(key=42)),
    (
        "parameters.max_block_transactions",
        lambda d: d["parameters"].update(max_block_transactions=0),
    ),
    ("parameters.block_size", lambda d: d["parameters"].update(block_size=5)),
    (
        "parameters.max_round_timeout_ms",
        lambda d: d["parameters"].update(round_timeout_ms=5000, max_round_timeout_ms=100),
    ),
]


@pytest.mark.parametrize(("field", "change"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_genesis_is_refused_naming_the_field(field, change):
    with pytest.raises(GenesisError) as raised:
        Genesis.from_dict(_broken(change))
    assert raised.value.field == field, str(raised.value)
    assert "expected" in raised.value.detail


def test_unknown_top_level_key_is_named():
    data = genesis_dict()
    data["validator"] = []
    with pytest.raises(GenesisError) as raised:
        Genesis.from_dict(data)
    assert raised.value.field == "validator"


def test_a_file_that_is_not_json_is_refused(tmp_path):
    (tmp_path / "genesis.json").write_text("{not json")
    with pytest.raises(GenesisError, match="expected JSON"):
        load(tmp_path / "genesis.json")
    with pytest.raises(GenesisError, match="readable"):
        load(tmp_path / "missing.json")


def test_a_p256_participant_key_is_accepted():
    data = genesis_dict()
    data["participants"][1]["key"] = PrivateKey.from_p256_scalar(7).public_key.to_text()
    genesis = Genesis.from_dict(data)
    assert genesis.participants[1].key.type is KeyType.ECDSA_P256
    assert json.loads(json.dumps(genesis.to_dict())) == genesis.to_dict()
    assert key("bank-a").public_key != genesis.participants[1].key


def test_a_bic_is_optional_and_a_genesis_without_one_keeps_its_hash():
    plain = Genesis.from_dict(genesis_dict())
    assert all(p.bic == "" for p in plain.participants)
    assert "bic" not in json.dumps(plain.to_dict())

    with_bic = genesis_dict()
    with_bic["participants"][1]["bic"] = "BNKASGX0"
    genesis = Genesis.from_dict(with_bic)
    assert genesis.participants[1].bic == "BNKASGX0"
    assert genesis.participant_by_bic("BNKASGX0XXX") == genesis.participants[1]
    assert genesis.participant_by_bic("BNKZSGX0") is None
    assert genesis.hash != plain.hash and Genesis.from_dict(genesis.to_dict()) == genesis


@pytest.mark.parametrize("bic", ["bnkasgx0", "BNKA", "BNKA1GX0", "BNKASGX0X", 42])
def test_a_malformed_bic_is_refused_naming_the_participant(bic):
    data = genesis_dict()
    data["participants"][1]["bic"] = bic
    with pytest.raises(GenesisError) as refused:
        Genesis.from_dict(data)
    assert refused.value.field == "participants[1].bic"


def test_two_participants_may_not_share_a_bic():
    data = genesis_dict()
    data["participants"][1]["bic"] = "BNKASGX0"
    data["participants"][2]["bic"] = "BNKASGX0XXX"
    with pytest.raises(GenesisError) as refused:
        Genesis.from_dict(data)
    assert refused.value.field == "participants[2].bic"
