"""Signatures are verified with the key the chain holds for the signer at that height.

A bank admitted in block 2 pays in block 3. The audit's signature stage runs ahead of
the replay; these stories check that the bank's first payment verifies with the key its
admission carried, and that a payment signed with another key is named, in a block built
as a dishonest proposer would build it (executed as if the signature were good).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from straits.ledger.v1 import transaction_pb2 as tx_pb

from clients.cli.main import main
from ledger import block as blocks
from ledger.execute import AlreadyVerified, Execution, execute
from ledger.store import SqliteStore
from ledger.transaction import Transaction, sign
from tests.ledger.conftest import VALIDATORS, Chain, key


def commit_unverified(chain: Chain, batch: list[Transaction]) -> Execution:
    execution = execute(chain.state, batch, verify=AlreadyVerified(), strict=True)
    block = blocks.build(
        chain_id=chain.genesis.chain_id, height=chain.state.height + 1,
        parent_hash=chain.state.head_hash, timestamp_ms=chain.state.timestamp_ms + 100,
        proposer=VALIDATORS[0], round=0, transactions=execution.transactions,
        state_root=execution.state_root, receipts_root=execution.receipts_root)
    execution = execution.for_block(block)
    chain.state = execution.state
    chain.blocks.append(block)
    return execution


def chain_with_a_new_bank(directory: Path, *, payment_key: str) -> tuple[Path, Path]:
    chain = Chain()
    genesis = directory / "genesis.json"
    chain.genesis.save(genesis)
    admit = chain.sign("central-bank", admit_bank=tx_pb.AdmitBank(
        bank="bank-d", key=key("bank-d").public_key.to_proto(), name="Bank D"))
    payment = tx_pb.TransactionBody(signer="bank-d", valid_until_height=20, nonce=999,
                                    transfer=tx_pb.Transfer(payee="bank-a", amount=50,
                                                            priority=tx_pb.PRIORITY_NORMAL))
    batches = [
        [chain.issue("bank-a", 10_000)],
        [admit, chain.issue("bank-d", 1_000)],
        [sign(chain.genesis.chain_id, key(payment_key), payment),
         chain.transfer("bank-a", "bank-d", 7)],
    ]
    path = directory / "ledger.db"
    with SqliteStore(path) as store:
        for batch in batches:
            execution = commit_unverified(chain, batch)
            block = chain.blocks[-1]
            sealed = block.with_seals([
                blocks.make_seal(chain.genesis.chain_id, block.hash, v, key(v))
                for v in VALIDATORS[:3]
            ])
            store.commit(sealed, execution.for_block(sealed))
    return path, genesis


def audit(capsys: pytest.CaptureFixture[str], store: Path, genesis: Path) -> tuple[int, dict]:
    code = main(["audit", "--json", "--quiet", "--store", str(store), "--genesis", str(genesis)])
    return code, json.loads(capsys.readouterr().out)["reports"][0]


def test_a_bank_admitted_on_the_chain_pays_with_the_key_it_was_admitted_with(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, genesis = chain_with_a_new_bank(tmp_path, payment_key="bank-d")

    code, report = audit(capsys, store, genesis)

    assert code == 0, report["findings"]
    assert report["transactions"] == 5


def test_a_payment_signed_with_another_key_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, genesis = chain_with_a_new_bank(tmp_path, payment_key="someone else")

    code, report = audit(capsys, store, genesis)

    assert code == 1
    [at_three] = report["findings"]
    assert at_three["height"] == 3
    [finding] = at_three["findings"]
    assert finding["check"] == "signatures"
    assert finding["detail"].startswith("transaction 0 (")
    assert finding["detail"].endswith("signature does not verify against 'bank-d''s key")


def test_a_refused_admission_does_not_lend_its_key_to_a_later_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # bank-a tries to admit bank-x with its own key and is refused (only the central
    # bank admits); the central bank then admits bank-x with bank-x's key, and bank-x pays.
    chain = Chain()
    genesis = tmp_path / "genesis.json"
    chain.genesis.save(genesis)

    def admit(signer: str, holder: str) -> Transaction:
        return chain.sign(signer, admit_bank=tx_pb.AdmitBank(
            bank="bank-x", key=key(holder).public_key.to_proto(), name="Bank X"))

    payment = tx_pb.TransactionBody(
        signer="bank-x", valid_until_height=20, nonce=999,
        transfer=tx_pb.Transfer(payee="bank-a", amount=5, priority=tx_pb.PRIORITY_NORMAL))
    batches = [
        [admit("bank-a", "bank-a")],
        [admit("central-bank", "bank-x"), chain.issue("bank-x", 100)],
        [sign(chain.genesis.chain_id, key("bank-x"), payment)],
    ]
    store = tmp_path / "ledger.db"
    with SqliteStore(store) as sqlite:
        for batch in batches:
            execution = chain.commit(*batch)
            block = chain.blocks[-1]
            sealed = block.with_seals([
                blocks.make_seal(chain.genesis.chain_id, block.hash, v, key(v))
                for v in VALIDATORS[:3]
            ])
            sqlite.commit(sealed, execution.for_block(sealed))

    code, report = audit(capsys, store, genesis)

    assert code == 0, report["findings"]
    assert chain.state.balances["bank-x"] == 95
