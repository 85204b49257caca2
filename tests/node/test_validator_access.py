"""Who may do what at a validator, over real gRPC and mutual TLS: the caller is whoever its
certificate says, a bank sees and acts only for itself, and bad input is refused with the
right status while the ledger stays as it was."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from straits.consensus.v1 import consensus_service_pb2 as consensus_pb
from straits.consensus.v1 import consensus_service_pb2_grpc as consensus_grpc
from straits.ledger.v1 import transaction_pb2 as tx_pb
from straits.validator.v1 import validator_pb2 as pb
from straits.validator.v1 import validator_pb2_grpc as pb_grpc

from ledger.keys import PrivateKey
from ledger.transaction import Transaction, sign
from services.validator.servicers import MAX_SUBMISSION
from tests.bank.network import Network, running_network
from wire.tls import TlsFiles, secure_channel

REFUSED = pb.SUBMISSION_STATUS_REFUSED


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with running_network(tmp_path_factory.mktemp("access"), banks=2) as network:
        network.central_bank_client().issue("bank-a", 1_000, collateral_ref="bond-a")
        yield network


def node_files(network: Network, participant: str) -> tuple[TlsFiles, PrivateKey]:
    folder: Path = network.layout.directory / "nodes" / participant
    tls = TlsFiles(network.layout.ca_certificate, folder / "tls.crt", folder / "tls.key")
    return tls, PrivateKey.load(folder / "ledger.key")


def validator_stub(network: Network, tls: TlsFiles) -> pb_grpc.ValidatorServiceStub:
    channel = secure_channel(network.address("validator-1"), tls)
    network.channels.append(channel)
    return pb_grpc.ValidatorServiceStub(channel)


def transfer(network: Network, key: PrivateKey, signer: str, payee: str, amount: int):  # type: ignore[no-untyped-def]
    head = network.regulator().head()
    body = tx_pb.TransactionBody(
        signer=signer,
        valid_until_height=head.height + 50,
        nonce=amount,
        transfer=tx_pb.Transfer(payee=payee, amount=amount, priority=tx_pb.PRIORITY_NORMAL),
    )
    return sign(head.chain_id, key, body)


def code_of(call) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as failure:
        call()
    return failure.value.code()


def test_a_bank_cannot_submit_a_payment_signed_for_another_bank(network: Network) -> None:
    tls_a, _ = node_files(network, "bank-a")
    _, key_b = node_files(network, "bank-b")
    stub = validator_stub(network, tls_a)
    forged = transfer(network, key_b, "bank-b", "bank-a", 7)
    [result] = stub.SubmitTransactions(
        pb.SubmitTransactionsRequest(transactions=[forged.to_proto()]), timeout=10
    ).results
    assert result.status == REFUSED
    assert result.error.reason == "not_permitted"
    assert result.error.status_code == grpc.StatusCode.PERMISSION_DENIED.value[0]


def test_a_bank_reads_only_its_own_account_and_payments(network: Network) -> None:
    tls_a, _ = node_files(network, "bank-a")
    stub = validator_stub(network, tls_a)
    assert stub.GetAccount(pb.GetAccountRequest(account="bank-a"), timeout=5).account.balance >= 0
    assert (
        code_of(lambda: stub.GetAccount(pb.GetAccountRequest(account="bank-b"), timeout=5))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    accounts = stub.GetAccounts(pb.GetAccountsRequest(), timeout=5).accounts
    assert [a.id for a in accounts] == ["bank-a"]

    # A payment between the central bank and bank-a is invisible to bank-b.
    issued = network.regulator().blocks(1, 1)[0].block.transactions[0]
    tls_b, _ = node_files(network, "bank-b")
    tx_id = sign_id(network, issued)
    assert (
        stub.GetTransaction(pb.GetTransactionRequest(transaction_id=tx_id), timeout=5).commit.height
        == 1
    )
    stub_b = validator_stub(network, tls_b)
    assert (
        code_of(
            lambda: stub_b.GetTransaction(pb.GetTransactionRequest(transaction_id=tx_id), timeout=5)
        )
        == grpc.StatusCode.NOT_FOUND
    )


def sign_id(network: Network, signed: tx_pb.SignedTransaction) -> bytes:
    return Transaction.from_proto(network.regulator().head().chain_id, signed).id


def test_a_banks_view_of_a_block_hides_other_banks_payments_but_keeps_every_id(
    network: Network,
) -> None:
    tls_b, _ = node_files(network, "bank-b")
    view = validator_stub(network, tls_b).GetBlocks(
        pb.GetBlocksRequest(from_height=1, limit=1), timeout=5
    )
    [block] = view.blocks
    assert block.redacted
    assert len(block.block.transactions) == 0, "bank-b sees the central bank's issue to bank-a"
    assert len(block.transaction_ids) == 1, "the ids stay, so bank-b can check the root"


def test_the_regulator_reads_everything_but_submits_nothing(network: Network) -> None:
    stub = validator_stub(network, network.layout.regulator)
    assert {a.id for a in stub.GetAccounts(pb.GetAccountsRequest(), timeout=5).accounts} >= {
        "bank-a",
        "bank-b",
        "central-bank",
    }
    assert (
        code_of(lambda: stub.SubmitTransactions(pb.SubmitTransactionsRequest(), timeout=5))
        == grpc.StatusCode.PERMISSION_DENIED
    )


def test_only_validators_speak_consensus(network: Network) -> None:
    tls_a, _ = node_files(network, "bank-a")
    channel = secure_channel(network.address("validator-1"), tls_a)
    network.channels.append(channel)
    stub = consensus_grpc.ConsensusServiceStub(channel)
    assert (
        code_of(lambda: stub.Deliver(consensus_pb.DeliverRequest(), timeout=5))
        == grpc.StatusCode.PERMISSION_DENIED
    )


def test_bad_input_is_refused_precisely_and_leaves_the_ledger_unchanged(network: Network) -> None:
    tls_a, key_a = node_files(network, "bank-a")
    stub = validator_stub(network, tls_a)
    regulator = network.regulator()
    before = regulator.head()

    garbage = tx_pb.SignedTransaction(body=b"\xff\x00garbage", signature=b"x")
    zero = transfer(network, key_a, "bank-a", "bank-b", 5).to_proto()
    body = tx_pb.TransactionBody.FromString(zero.body)
    body.transfer.amount = 0
    zero.body = body.SerializeToString()
    unknown_payee = transfer(network, key_a, "bank-a", "bank-zz", 3)
    bad_signature = transfer(network, key_a, "bank-a", "bank-b", 4).to_proto()
    bad_signature.signature = bytes(64)
    results = stub.SubmitTransactions(
        pb.SubmitTransactionsRequest(
            transactions=[garbage, zero, unknown_payee.to_proto(), bad_signature]
        ),
        timeout=10,
    ).results
    assert [r.status for r in results] == [REFUSED] * 4
    assert [r.error.reason for r in results] == [
        "malformed",
        "malformed_transaction",
        "unknown_account",
        "bad_signature",
    ]
    assert results[1].error.field == "transfer.amount"

    oversize = pb.SubmitTransactionsRequest(transactions=[garbage] * (MAX_SUBMISSION + 1))
    assert (
        code_of(lambda: stub.SubmitTransactions(oversize, timeout=10))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        code_of(
            lambda: stub.GetTransaction(
                pb.GetTransactionRequest(transaction_id=bytes(32)), timeout=5
            )
        )
        == grpc.StatusCode.NOT_FOUND
    )
    after = regulator.head()
    assert (after.height, after.state_root) == (before.height, before.state_root)
