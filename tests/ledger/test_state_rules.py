"""The business rules, one story each: who may do what, and what a refusal leaves behind."""

from __future__ import annotations

import pytest
from straits.ledger.v1 import receipt_pb2 as receipt_pb
from straits.ledger.v1 import transaction_pb2 as tx_pb

from ledger.transaction import INT64_MAX
from tests.ledger.conftest import Chain, key

SETTLED = receipt_pb.OUTCOME_SETTLED
QUEUED = receipt_pb.OUTCOME_QUEUED
APPLIED = receipt_pb.OUTCOME_APPLIED
REJECTED = receipt_pb.OUTCOME_REJECTED


def funded(amounts: dict[str, int]) -> Chain:
    chain = Chain()
    chain.commit(*(chain.issue(bank, amount) for bank, amount in amounts.items()))
    return chain


def assert_rejected_and_untouched(chain: Chain, transaction, reason: str, field: str) -> None:
    before = chain.state
    execution = chain.commit(transaction)
    receipt = execution.receipts[0]
    assert receipt.outcome == REJECTED, f"expected a rejection ({reason}), got {receipt}"
    assert receipt.reason == reason
    assert f"[{field}]" in receipt.detail, receipt.detail
    after = chain.state
    assert after.balances == before.balances
    assert after.queues == before.queues
    assert after.participants == before.participants
    assert (after.issued, after.redeemed) == (before.issued, before.redeemed)
    assert after.is_replay(transaction.id, transaction.body.valid_until_height), "id not consumed"


def test_central_bank_issues_against_collateral_and_supply_follows():
    chain = Chain()
    execution = chain.commit(chain.issue("bank-a", 5_000), chain.issue("bank-b", 2_000))
    assert [r.outcome for r in execution.receipts] == [APPLIED, APPLIED]
    assert chain.state.balances["bank-a"] == 5_000
    assert chain.state.issued == 7_000 and chain.state.supply == 7_000


@pytest.mark.parametrize("signer", ["bank-a", "regulator"])
def test_only_the_central_bank_issues(signer):
    chain = Chain()
    issue = chain.sign(signer, issue=tx_pb.Issue(bank="bank-a", amount=100))
    assert_rejected_and_untouched(chain, issue, "not_permitted", "signer")


def test_issue_to_an_unknown_bank_is_rejected():
    chain = Chain()
    assert_rejected_and_untouched(chain, chain.issue("bank-z", 1), "unknown_account", "issue.bank")


def test_issue_to_the_regulator_is_rejected():
    chain = Chain()
    assert_rejected_and_untouched(chain, chain.issue("regulator", 1), "not_permitted", "issue.bank")


def test_issue_that_would_overflow_int64_is_rejected():
    chain = funded({"bank-a": INT64_MAX - 10})
    assert_rejected_and_untouched(chain, chain.issue("bank-b", 11), "overflow", "issue.amount")
    chain.commit(chain.issue("bank-b", 10))
    assert chain.state.supply == INT64_MAX


def test_bank_redeems_up_to_its_balance_and_tokens_are_destroyed():
    chain = funded({"bank-a": 1_000})
    assert_rejected_and_untouched(
        chain, chain.redeem("bank-a", 1_001), "insufficient_funds", "redeem.amount"
    )
    execution = chain.commit(chain.redeem("bank-a", 1_000))
    assert execution.receipts[0].outcome == APPLIED
    assert chain.state.balances["bank-a"] == 0
    assert (chain.state.issued, chain.state.redeemed, chain.state.supply) == (1_000, 1_000, 0)


def test_central_bank_cannot_redeem():
    chain = funded({"bank-a": 10})
    assert_rejected_and_untouched(chain, chain.redeem("central-bank", 1), "not_permitted", "signer")


def test_transfer_settles_at_once_when_covered():
    chain = funded({"bank-a": 1_000})
    execution = chain.commit(chain.transfer("bank-a", "bank-b", 400))
    assert execution.receipts[0].outcome == SETTLED
    assert (chain.state.balances["bank-a"], chain.state.balances["bank-b"]) == (600, 400)


def test_transfer_beyond_the_balance_waits_in_the_queue():
    chain = funded({"bank-a": 100})
    transfer = chain.transfer("bank-a", "bank-b", 400)
    execution = chain.commit(transfer)
    assert execution.receipts[0].outcome == QUEUED
    assert chain.state.balances["bank-a"] == 100, "a queued transfer must not move money"
    assert chain.state.queued(transfer.id).payer == "bank-a"


@pytest.mark.parametrize(
    ("payer", "payee", "reason", "field"),
    [
        ("bank-a", "bank-a", "not_permitted", "transfer.payee"),
        ("bank-a", "bank-z", "unknown_account", "transfer.payee"),
        ("bank-a", "central-bank", "not_permitted", "transfer.payee"),
        ("central-bank", "bank-a", "not_permitted", "signer"),
        ("regulator", "bank-a", "not_permitted", "signer"),
    ],
)
def test_transfer_refused_by_role_or_counterparty(payer, payee, reason, field):
    chain = funded({"bank-a": 100})
    assert_rejected_and_untouched(chain, chain.transfer(payer, payee, 10), reason, field)


def test_suspended_bank_can_neither_pay_nor_be_paid_nor_redeem():
    chain = funded({"bank-a": 100, "bank-b": 100})
    chain.commit(chain.suspend("bank-b"))
    assert_rejected_and_untouched(
        chain, chain.transfer("bank-a", "bank-b", 1), "suspended", "transfer.payee"
    )
    assert_rejected_and_untouched(
        chain, chain.transfer("bank-b", "bank-a", 1), "suspended", "signer"
    )
    assert_rejected_and_untouched(chain, chain.redeem("bank-b", 1), "suspended", "signer")
    assert_rejected_and_untouched(chain, chain.issue("bank-b", 1), "suspended", "issue.bank")
    chain.commit(chain.unsuspend("bank-b"))
    assert chain.commit(chain.transfer("bank-b", "bank-a", 1)).receipts[0].outcome == SETTLED


def test_only_the_central_bank_suspends_and_only_banks_are_suspended():
    chain = Chain()
    assert_rejected_and_untouched(
        chain, chain.suspend("bank-b", signer="bank-a"), "not_permitted", "signer"
    )
    assert_rejected_and_untouched(
        chain, chain.suspend("regulator"), "not_permitted", "suspend_bank.bank"
    )
    assert_rejected_and_untouched(
        chain, chain.suspend("bank-q"), "unknown_account", "suspend_bank.bank"
    )


def test_suspending_a_suspended_bank_changes_nothing():
    chain = Chain()
    chain.commit(chain.suspend("bank-a"))
    before = chain.state
    assert chain.commit(chain.suspend("bank-a")).receipts[0].outcome == APPLIED
    assert chain.state.participants == before.participants


def test_central_bank_admits_a_bank_that_can_then_be_paid_and_sign():
    chain = funded({"bank-a": 100})
    admit = chain.sign(
        "central-bank",
        admit_bank=tx_pb.AdmitBank(
            bank="bank-d", key=key("bank-d").public_key.to_proto(), name="D"
        ),
    )
    execution = chain.commit(admit, chain.transfer("bank-a", "bank-d", 30))
    assert [r.outcome for r in execution.receipts] == [APPLIED, SETTLED]
    assert chain.commit(chain.transfer("bank-d", "bank-a", 5)).receipts[0].outcome == SETTLED
    assert chain.state.balances["bank-d"] == 25


def test_admitting_an_existing_participant_is_rejected():
    chain = Chain()
    admit = chain.sign(
        "central-bank",
        admit_bank=tx_pb.AdmitBank(bank="bank-a", key=key("x").public_key.to_proto(), name="A"),
    )
    assert_rejected_and_untouched(chain, admit, "already_exists", "admit_bank.bank")


def test_validator_change_takes_effect_from_its_effective_height():
    chain = Chain()
    new_set = [tx_pb.Validator(id="validator-9", key=key("validator-9").public_key.to_proto())]
    change = chain.sign(
        "central-bank",
        change_validators=tx_pb.ChangeValidators(validators=new_set, effective_height=4),
    )
    chain.commit(change)
    assert set(chain.state.validators_for(3)) == {f"validator-{i}" for i in range(1, 5)}
    assert set(chain.state.validators_for(4)) == {"validator-9"}
    chain.commit()
    chain.commit()
    assert chain.state.height == 3 and chain.state.pending_validators, "applied too early"
    block = chain.commit()
    assert chain.blocks[-1].header.proposer == "validator-9", "block 4 must come from the new set"
    assert set(chain.state.validators) == {"validator-9"} and chain.state.pending_validators == ()
    assert block.state.validators_for(5) == chain.state.validators


def test_validator_change_for_the_current_height_is_rejected():
    chain = Chain()
    change = chain.sign(
        "central-bank",
        change_validators=tx_pb.ChangeValidators(
            validators=[tx_pb.Validator(id="v", key=key("v").public_key.to_proto())],
            effective_height=1,
        ),
    )
    assert_rejected_and_untouched(
        chain, change, "invalid_governance", "change_validators.effective_height"
    )
    assert chain.state.pending_validators == ()


def test_bank_cannot_change_validators():
    chain = Chain()
    change = chain.sign(
        "bank-a",
        change_validators=tx_pb.ChangeValidators(
            validators=[tx_pb.Validator(id="v", key=key("v").public_key.to_proto())],
            effective_height=9,
        ),
    )
    assert_rejected_and_untouched(chain, change, "not_permitted", "signer")
