"""Identity by membership: a CA-signed certificate is not enough, the ledger must count its
holder in, now; and a revoked certificate is refused by every node without a restart.

A real network in this process (4 validators, the central bank, 2 banks; real gRPC over
mutual TLS, real SQLite files). Certificates for strangers are issued by the network's
own CA, exactly as a leaked or mistaken CA signature would produce them.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from straits.consensus.v1 import consensus_pb2
from straits.consensus.v1 import consensus_service_pb2_grpc as consensus_grpc
from straits.ledger.v1 import transaction_pb2 as tx_pb
from straits.validator.v1 import validator_pb2 as validator_pb
from straits.validator.v1 import validator_pb2_grpc as validator_grpc

from clients.cli.main import main as straits
from clients.sdk import ApiError
from ledger import genesis as genesis_file
from ledger.roles import Role
from services.common.pki import CertificateAuthority, Identity
from services.common.revocation import add_revocations
from tests.bank.network import Network, running_network
from wire.tls import TlsFiles, channel_credentials

SUBMIT_NOTHING = validator_pb.SubmitTransactionsRequest()


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with running_network(tmp_path_factory.mktemp("membership"), banks=2) as network:
        yield network


def certificate_for(network: Network, identity: Identity, folder: Path) -> TlsFiles:
    """A certificate the network's CA really signed, for whoever ``identity`` names."""
    pki = network.layout.directory / "pki"
    ca = CertificateAuthority.load(pki / "ca.crt", pki / "ca.key")
    credential = ca.issue(identity, now=dt.datetime.now(dt.UTC))
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{identity.role.value}-{identity.participant_id}"
    credential.save(folder / f"{stem}.crt", folder / f"{stem}.key")
    return TlsFiles(pki / "ca.crt", folder / f"{stem}.crt", folder / f"{stem}.key")


def node_tls(network: Network, node_id: str) -> TlsFiles:
    folder = network.layout.directory / "nodes" / node_id
    return TlsFiles(network.layout.directory / "pki" / "ca.crt", folder / "tls.crt",
                    folder / "tls.key")


def channel(network: Network, node_id: str, tls: TlsFiles) -> grpc.Channel:
    opened = grpc.secure_channel(network.address(node_id), channel_credentials(tls),
                                 options=[("grpc.use_local_subchannel_pool", 1)])
    network.channels.append(opened)
    return opened


def code_of(call: Callable[[], object]) -> grpc.StatusCode:
    """The status a call ends with, through a raw stub or the SDK."""
    try:
        call()
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return]
    except ApiError as error:
        return error.code
    return grpc.StatusCode.OK


def message_of(call: Callable[[], object]) -> str:
    try:
        call()
    except grpc.RpcError as error:
        return error.details() or ""
    except ApiError as error:
        return error.message
    raise AssertionError("expected the call to fail")


def eventually(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_a_validator_outside_the_set_can_neither_sync_nor_read(network: Network,
                                                                tmp_path: Path) -> None:
    stranger = certificate_for(network, Identity("validator-9", Role.VALIDATOR), tmp_path)
    to_validator = channel(network, "validator-1", stranger)
    consensus = consensus_grpc.ConsensusServiceStub(to_validator)
    reads = validator_grpc.ValidatorServiceStub(to_validator)

    sync = lambda: consensus.SyncBlocks(consensus_pb2.BlockRequest(from_height=1, to_height=2),  # noqa: E731
                                        timeout=10)
    assert code_of(sync) is grpc.StatusCode.PERMISSION_DENIED
    assert "'validator-9' is not in the validator set" in message_of(sync)
    blocks = lambda: reads.GetBlocks(validator_pb.GetBlocksRequest(from_height=1), timeout=10)  # noqa: E731
    assert code_of(blocks) is grpc.StatusCode.PERMISSION_DENIED

    member = consensus_grpc.ConsensusServiceStub(
        channel(network, "validator-1", node_tls(network, "validator-2")))
    assert code_of(lambda: member.SyncBlocks(
        consensus_pb2.BlockRequest(from_height=1, to_height=1), timeout=10)) is grpc.StatusCode.OK


def test_a_bank_never_admitted_cannot_submit_or_read(network: Network, tmp_path: Path) -> None:
    stranger = certificate_for(network, Identity("bank-zz", Role.BANK), tmp_path)
    validator = validator_grpc.ValidatorServiceStub(channel(network, "validator-1", stranger))

    submit = lambda: validator.SubmitTransactions(SUBMIT_NOTHING, timeout=10)  # noqa: E731
    assert code_of(submit) is grpc.StatusCode.PERMISSION_DENIED
    assert "'bank-zz' is not a participant of this network" in message_of(submit)
    account = lambda: validator.GetAccount(  # noqa: E731
        validator_pb.GetAccountRequest(account="bank-zz"), timeout=10)
    assert code_of(account) is grpc.StatusCode.PERMISSION_DENIED


def test_a_certificate_in_the_wrong_role_is_refused(network: Network, tmp_path: Path) -> None:
    # bank-a exists, but as a bank: a regulator's certificate in its name reads nothing.
    wrong = certificate_for(network, Identity("bank-a", Role.REGULATOR), tmp_path)
    validator = validator_grpc.ValidatorServiceStub(channel(network, "validator-1", wrong))
    read = lambda: validator.GetAccounts(validator_pb.GetAccountsRequest(), timeout=10)  # noqa: E731
    assert code_of(read) is grpc.StatusCode.PERMISSION_DENIED
    assert "'bank-a' is a bank in the ledger" in message_of(read)


def test_a_suspended_bank_reads_but_does_not_submit(tmp_path: Path) -> None:
    with running_network(tmp_path / "net", banks=2) as network:
        bank_b = validator_grpc.ValidatorServiceStub(
            channel(network, "validator-1", node_tls(network, "bank-b")))
        read = lambda: bank_b.GetAccount(  # noqa: E731
            validator_pb.GetAccountRequest(account="bank-b"), timeout=10)
        submit = lambda: bank_b.SubmitTransactions(SUBMIT_NOTHING, timeout=10)  # noqa: E731
        assert code_of(submit) is not grpc.StatusCode.PERMISSION_DENIED

        commit = network.central_bank_client().suspend_bank("bank-b")
        every_validator = [validator_grpc.ValidatorServiceStub(
            channel(network, f"validator-{i}", node_tls(network, "bank-b"))) for i in (1, 2, 3, 4)]
        assert eventually(lambda: all(
            v.GetHead(validator_pb.GetHeadRequest(), timeout=10).height >= commit.height
            for v in every_validator))

        assert code_of(read) is grpc.StatusCode.OK
        assert code_of(submit) is grpc.StatusCode.PERMISSION_DENIED
        assert "suspended: it may read but not submit" in message_of(submit)
        assert code_of(lambda: network.bank("bank-b").balance()) is grpc.StatusCode.OK


def test_a_validator_removed_by_governance_loses_sync_at_once(tmp_path: Path) -> None:
    with running_network(tmp_path / "net", banks=1) as network:
        genesis = genesis_file.load(network.layout.genesis)
        remaining = [tx_pb.Validator(id=v.id, key=v.key.to_proto())
                     for v in genesis.validators if v.id != "validator-4"]
        regulator = network.regulator()
        effective = regulator.head().height + 3
        network.central_bank_client().propose_validators(remaining, effective_height=effective)

        from_removed = consensus_grpc.ConsensusServiceStub(
            channel(network, "validator-1", node_tls(network, "validator-4")))
        sync = lambda: from_removed.SyncBlocks(  # noqa: E731
            consensus_pb2.BlockRequest(from_height=1, to_height=1), timeout=10)
        assert code_of(sync) is grpc.StatusCode.OK  # still a member until the change applies
        assert eventually(lambda: regulator.head().height >= effective + 1, timeout=30)
        assert code_of(sync) is grpc.StatusCode.PERMISSION_DENIED
        assert "'validator-4' is not in the validator set" in message_of(sync)


def test_a_revoked_certificate_is_refused_without_a_restart(tmp_path: Path) -> None:
    with running_network(tmp_path / "net", banks=2) as network:
        bank_a, bank_b = network.bank("bank-a"), network.bank("bank-b")
        assert code_of(bank_a.balance) is grpc.StatusCode.OK
        certificate = network.client_tls("bank-a").certificate
        validator_4 = node_tls(network, "validator-4")
        to_validator_1 = validator_grpc.ValidatorServiceStub(
            channel(network, "validator-1", validator_4))
        head = lambda: to_validator_1.GetHead(validator_pb.GetHeadRequest(), timeout=10)  # noqa: E731
        assert code_of(head) is grpc.StatusCode.OK

        assert straits(["pki", "revoke", "--ca-dir", str(network.layout.directory / "pki"),
                        str(certificate), str(validator_4.certificate)]) == 0

        # Nodes reload the list within a second; new connections and open ones alike.
        assert eventually(lambda: code_of(bank_a.balance) is grpc.StatusCode.PERMISSION_DENIED)
        assert "has been revoked" in message_of(bank_a.balance)
        assert eventually(lambda: code_of(head) is grpc.StatusCode.PERMISSION_DENIED)
        assert code_of(bank_b.balance) is grpc.StatusCode.OK  # others are untouched


def test_a_damaged_revocation_list_does_not_unrevoke(tmp_path: Path) -> None:
    with running_network(tmp_path / "net", banks=1) as network:
        bank_a = network.bank("bank-a")
        crl = network.layout.directory / "pki" / "revoked.crl"
        assert straits(["pki", "revoke", "--ca-dir", str(network.layout.directory / "pki"),
                        str(network.client_tls("bank-a").certificate)]) == 0
        assert eventually(lambda: code_of(bank_a.balance) is grpc.StatusCode.PERMISSION_DENIED)

        other = CertificateAuthority.create("another network", now=dt.datetime.now(dt.UTC))
        forged = tmp_path / "forged.crl"
        add_revocations(other, forged, [], now=dt.datetime.now(dt.UTC))
        crl.write_bytes(forged.read_bytes())  # empty, and signed by a CA not the network's
        crl.write_text("not a revocation list")
        # Nothing to poll for: the refusal must simply go on past a reload period.
        time.sleep(1.5)
        assert code_of(bank_a.balance) is grpc.StatusCode.PERMISSION_DENIED
        crl.write_bytes(forged.read_bytes())
        time.sleep(1.5)
        assert code_of(bank_a.balance) is grpc.StatusCode.PERMISSION_DENIED
