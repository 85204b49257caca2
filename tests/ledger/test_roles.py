"""One vocabulary of roles: genesis, the state and its store say a role with ``Role``, as its
plain word, and each place accepts only the roles that fit it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.errors import GenesisError
from ledger.genesis import Genesis
from ledger.roles import PARTICIPANT_ROLES, Role
from ledger.store import SqliteStore
from tests.ledger.conftest import Chain, genesis_dict
from tests.ledger.test_store import commit


@pytest.mark.parametrize("role", [r for r in Role if r not in PARTICIPANT_ROLES])
def test_a_validator_or_a_client_is_not_a_participant_of_genesis(role: Role) -> None:
    data = genesis_dict()
    data["participants"][1]["role"] = role.value
    with pytest.raises(GenesisError) as refused:
        Genesis.from_dict(data)
    assert refused.value.field == "participants[1].role"
    assert "central_bank" in refused.value.detail, "the error lists the roles that fit"


def test_a_role_is_written_as_its_word_and_read_back_as_a_role(tmp_path: Path) -> None:
    chain = Chain()
    assert chain.genesis.central_bank.role is Role.CENTRAL_BANK
    assert '"role":"central_bank"' in chain.genesis.canonical_bytes().decode()

    store = SqliteStore(tmp_path / "ledger.db")
    commit(chain, store, chain.issue("bank-a", 5))
    store.close()
    reloaded = SqliteStore(tmp_path / "ledger.db").load_state()

    assert reloaded is not None and reloaded.root() == chain.state.root()
    assert {p.id: p.role for p in reloaded.participants.values()} == {
        "central-bank": Role.CENTRAL_BANK,
        "bank-a": Role.BANK,
        "bank-b": Role.BANK,
        "bank-c": Role.BANK,
        "regulator": Role.REGULATOR,
    }
    assert all(type(p.role) is Role for p in reloaded.participants.values())
