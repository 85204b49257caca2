"""Inadmissible transactions: a proposer drops them with a precise error, a block that
carries one is invalid, and either way the state is untouched."""

from __future__ import annotations

import pytest
from straits.ledger.v1 import transaction_pb2 as tx_pb

from ledger import codec
from ledger.errors import (
    BadSignatureError,
    DecodeError,
    ExpiredError,
    InvalidBlockError,
    MalformedTransactionError,
    ReplayError,
    UnknownSignerError,
    WrongChainError,
)
from ledger.execute import InlineCheck, execute
from ledger.transaction import INT64_MAX, Transaction, sign
from tests.ledger.conftest import Chain, key


def forged(transaction: Transaction) -> Transaction:
    """The same body with a signature by the wrong key."""
    wrong = key("mallory").sign(transaction.signed)
    return Transaction(
        transaction.id, transaction.body, transaction.body_bytes, wrong, transaction.chain_id
    )


def assert_dropped(chain: Chain, transaction: Transaction, error: type, field: str) -> None:
    before = chain.state
    execution = execute(before, [transaction], verify=InlineCheck(), strict=False)
    assert execution.transactions == ()
    [(dropped, reason)] = execution.dropped
    assert dropped is transaction and type(reason) is error, reason
    assert reason.field == field, reason
    with pytest.raises(InvalidBlockError) as raised:
        execute(before, [transaction], verify=InlineCheck(), strict=True)
    assert raised.value.field == "transactions[0]" and isinstance(raised.value.__cause__, error)
    assert chain.state is before


def test_signature_by_another_key_is_inadmissible():
    chain = Chain()
    assert_dropped(chain, forged(chain.issue("bank-a", 1)), BadSignatureError, "signature")


def test_unknown_signer_is_inadmissible():
    chain = Chain()
    stranger = chain.sign("bank-x", redeem=tx_pb.Redeem(amount=1))
    assert_dropped(chain, stranger, UnknownSignerError, "signer")


def test_transaction_for_another_chain_is_inadmissible():
    chain = Chain()
    body = tx_pb.TransactionBody(
        signer="bank-a", valid_until_height=5, redeem=tx_pb.Redeem(amount=1)
    )
    other = sign("another-chain", key("bank-a"), body)
    assert_dropped(chain, other, WrongChainError, "chain_id")


def test_expired_and_too_far_ahead_are_inadmissible():
    chain = Chain()
    chain.commit()
    chain.commit()
    assert_dropped(
        chain, chain.issue("bank-a", 1, valid_until=2), ExpiredError, "valid_until_height"
    )
    horizon = chain.state.height + 1 + chain.state.parameters.max_transaction_lifetime
    assert_dropped(
        chain, chain.issue("bank-a", 1, valid_until=horizon + 1), ExpiredError, "valid_until_height"
    )
    assert chain.commit(chain.issue("bank-a", 1, valid_until=horizon)).transactions


def test_replay_in_a_later_block_and_within_one_block_is_refused():
    chain = Chain()
    issue = chain.issue("bank-a", 100)
    execution = execute(chain.state, [issue, issue], verify=InlineCheck(), strict=False)
    assert execution.transactions == (issue,) and isinstance(execution.dropped[0][1], ReplayError)
    chain.commit(issue)
    assert_dropped(chain, issue, ReplayError, "id")
    chain.commit()
    assert_dropped(chain, issue, ReplayError, "id")
    assert chain.state.balances["bank-a"] == 100


def test_replay_of_a_rejected_transaction_is_refused_too():
    chain = Chain()
    redeem = chain.redeem("bank-a", 5)
    assert chain.commit(redeem).receipts[0].reason == "insufficient_funds"
    chain.commit(chain.issue("bank-a", 5))
    assert_dropped(chain, redeem, ReplayError, "id")


def test_bad_signatures_mixed_into_a_large_batch_are_each_dropped_and_spoil_nothing():
    chain = Chain()
    chain.commit(chain.issue("bank-a", 10_000))
    transfers = [chain.transfer("bank-a", "bank-b", 1) for _ in range(300)]
    bad = {7, 8, 150, 299}
    batch = [forged(t) if i in bad else t for i, t in enumerate(transfers)]
    execution = execute(chain.state, batch, verify=InlineCheck(), strict=False)
    assert [t.id for t, _ in execution.dropped] == [transfers[i].id for i in sorted(bad)]
    assert all(isinstance(error, BadSignatureError) for _, error in execution.dropped)
    assert len(execution.transactions) == 296
    assert execution.state.balances["bank-b"] == 296
    with pytest.raises(InvalidBlockError) as raised:
        execute(chain.state, batch, verify=InlineCheck(), strict=True)
    assert raised.value.field == "transactions[7]"


def test_admit_bank_with_a_malformed_key_never_forms_a_transaction():
    body = tx_pb.TransactionBody(
        signer="central-bank",
        valid_until_height=5,
        admit_bank=tx_pb.AdmitBank(
            bank="bank-d", key=tx_pb.PublicKey(type=tx_pb.KEY_TYPE_ED25519, data=b"short"), name="D"
        ),
    )
    with pytest.raises(MalformedTransactionError) as raised:
        sign("straits-test", key("central-bank"), body)
    assert raised.value.field == "admit_bank.key"


@pytest.mark.parametrize("amount", [0, -1, -(2**63)])
def test_zero_and_negative_amounts_never_form_a_transaction(amount):
    body = tx_pb.TransactionBody(
        signer="bank-a",
        valid_until_height=5,
        transfer=tx_pb.Transfer(payee="bank-b", amount=amount, priority=1),
    )
    with pytest.raises(MalformedTransactionError) as raised:
        sign("straits-test", key("bank-a"), body)
    assert raised.value.field == "transfer.amount"


def test_an_amount_beyond_int64_cannot_even_be_encoded():
    with pytest.raises(ValueError):
        tx_pb.Transfer(payee="bank-b", amount=INT64_MAX + 1)


def test_truncated_and_garbage_bytes_do_not_decode():
    chain = Chain()
    wire = chain.transfer("bank-a", "bank-b", 5).encode()
    with pytest.raises(DecodeError):
        Transaction.decode("straits-test", wire[:-7])
    with pytest.raises(DecodeError):
        Transaction.decode("straits-test", b"\xff\xfe garbage \x00\x01")
    hollow = tx_pb.SignedTransaction(
        body=codec.encode(tx_pb.TransactionBody(signer="bank-a"))
    ).SerializeToString()
    with pytest.raises(MalformedTransactionError):
        Transaction.decode("straits-test", hollow)


def test_block_size_is_bounded_for_validators_and_proposers_alike():
    chain = Chain()
    limit = chain.state.parameters.max_block_transactions
    transfers = [chain.transfer("bank-a", "bank-b", 1, queue_always=True) for _ in range(limit + 3)]
    execution = execute(chain.state, transfers, verify=InlineCheck(), strict=False)
    assert len(execution.transactions) == limit and execution.excess == tuple(transfers[limit:])
    assert not any(
        execution.state.is_replay(t.id, t.body.valid_until_height) for t in execution.excess
    )
    with pytest.raises(InvalidBlockError) as raised:
        execute(chain.state, transfers, verify=InlineCheck(), strict=True)
    assert raised.value.field == "transactions"
