"""Seals are checked against the validator set of each block's own height.

A chain whose central bank replaces validator-4 by validator-5 from height 3 is written
into a real SQLite store, block by block, each sealed by three validators. Sealed by
the set in force at each height it audits clean; sealed at height 3 by the outgoing
validator-4 instead of validator-5, the audit names height 3 and the seal that does not
count, since the block lacks a quorum of its own validators.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from straits.ledger.v1 import transaction_pb2 as tx_pb

from clients.cli.main import main
from ledger import block as blocks
from ledger.store import SqliteStore
from tests.ledger.conftest import Chain, key

SWITCH = 3


def written_chain(directory: Path, sealers: dict[int, Sequence[str]]) -> tuple[Path, Path]:
    """Five blocks with the validator change in block 1; returns (store, genesis file)."""
    chain = Chain()
    genesis = directory / "genesis.json"
    chain.genesis.save(genesis)
    store_path = directory / "ledger.db"
    new_set = [tx_pb.Validator(id=v, key=key(v).public_key.to_proto())
               for v in ("validator-1", "validator-2", "validator-3", "validator-5")]
    with SqliteStore(store_path) as store:
        batches = [
            [chain.issue("bank-a", 10_000),
             chain.sign("central-bank", change_validators=tx_pb.ChangeValidators(
                 validators=new_set, effective_height=SWITCH))],
            *([chain.transfer("bank-a", "bank-b", 100 + n)] for n in range(4)),
        ]
        for batch in batches:
            height = chain.state.height + 1
            execution = chain.commit(*batch)
            block = chain.blocks[-1]
            sealed = block.with_seals([
                blocks.make_seal(chain.genesis.chain_id, block.hash, v, key(v))
                for v in sealers.get(height, ("validator-1", "validator-2", "validator-3"))
            ])
            store.commit(sealed, execution.for_block(sealed))
    return store_path, genesis


def audit(capsys: pytest.CaptureFixture[str], store: Path, genesis: Path) -> tuple[int, dict]:
    code = main(["audit", "--json", "--quiet", "--store", str(store), "--genesis", str(genesis)])
    return code, json.loads(capsys.readouterr().out)["reports"][0]


def test_seals_of_the_set_in_force_at_each_height_audit_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, genesis = written_chain(tmp_path, {
        SWITCH + 1: ("validator-2", "validator-3", "validator-5"),
        SWITCH + 2: ("validator-5", "validator-1", "validator-3"),
    })

    code, report = audit(capsys, store, genesis)

    assert code == 0, report["findings"]
    assert report["blocks"] == 5


def test_a_seal_by_a_validator_that_left_does_not_count_after_the_switch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, genesis = written_chain(tmp_path, {
        SWITCH: ("validator-1", "validator-2", "validator-4"),
    })

    code, report = audit(capsys, store, genesis)

    assert code == 1
    assert report["first_bad_height"] == SWITCH
    [at_switch] = report["findings"]
    assert at_switch["height"] == SWITCH
    assert [f["detail"] for f in at_switch["findings"]] == [
        "seal by 'validator-4', not a validator of this height",
        "2 valid seals, a quorum of 4 validators is 3",
    ]


def test_before_the_switch_the_outgoing_validator_still_seals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, genesis = written_chain(tmp_path, {
        SWITCH - 1: ("validator-4", "validator-2", "validator-3"),
    })

    code, report = audit(capsys, store, genesis)

    assert code == 0, report["findings"]
