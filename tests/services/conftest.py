"""A small network PKI and a real mutual-TLS server with test-double servicers.

The doubles answer from the caller identity that the certificate proved, so a test
sees exactly what the auth layer hands to real servicers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from straits.bank.v1 import bank_pb2, bank_pb2_grpc
from straits.central_bank.v1 import central_bank_pb2, central_bank_pb2_grpc
from straits.common.v1 import common_pb2
from straits.validator.v1 import validator_pb2, validator_pb2_grpc

from ledger.errors import UnknownAccountError
from ledger.roles import Role
from services.common.auth import caller_of
from services.common.errors import UnavailableError
from services.common.pki import CertificateAuthority, Credential, Identity
from services.common.server import ServerSettings, Service, create_server
from wire.tls import TlsFiles, channel_credentials

NODE = "bank-a"  # the test server acts as bank-a's node
KNOWN_ACCOUNTS = ("bank-a", "bank-b", "central-bank")


@dataclass(frozen=True)
class Pki:
    directory: Path
    ca: CertificateAuthority

    def save(self, label: str, credential: Credential) -> TlsFiles:
        files = TlsFiles(self.directory / "ca.crt", self.directory / f"{label}.crt",
                         self.directory / f"{label}.key")
        credential.save(files.certificate, files.key)
        return files

    def issue(self, label: str, participant: str, role: Role, **kwargs: object) -> TlsFiles:
        now = kwargs.pop("now", dt.datetime.now(dt.UTC))
        credential = self.ca.issue(Identity(participant, role), now=now, name=label, **kwargs)
        return self.save(label, credential)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority.create("straits-test", now=dt.datetime.now(dt.UTC))
    (directory / "ca.crt").write_bytes(ca.credential.certificate_pem)
    return Pki(directory, ca)


class EchoValidator(validator_pb2_grpc.ValidatorServiceServicer):
    def GetAccount(self, request, context):
        caller = caller_of(context)
        caller.require_read(request.account)
        if request.account not in KNOWN_ACCOUNTS:
            raise UnknownAccountError(f"expected a known account, got {request.account!r}",
                                      field="account")
        return validator_pb2.GetAccountResponse(account=common_pb2.Account(id=request.account))

    def SubmitTransactions(self, request, context):
        return validator_pb2.SubmitTransactionsResponse()

    def StreamBlocks(self, request, context):
        yield validator_pb2.StreamBlocksResponse()
        raise UnavailableError("expected to follow the chain, but the node is catching up")


class EchoBank(bank_pb2_grpc.BankServiceServicer):
    def GetBalance(self, request, context):
        caller = caller_of(context)
        return bank_pb2.GetBalanceResponse(
            account=common_pb2.Account(id=caller.participant_id, name=caller.name))


class EchoCentralBank(central_bank_pb2_grpc.CentralBankServiceServicer):
    def GetTotalSupply(self, request, context):
        return central_bank_pb2.GetTotalSupplyResponse()


@pytest.fixture(scope="session")
def server_address(pki: Pki) -> Iterator[str]:
    files = pki.issue("bank-a-node", NODE, Role.BANK)
    services = [
        Service("straits.validator.v1.ValidatorService",
                lambda s: validator_pb2_grpc.add_ValidatorServiceServicer_to_server(
                    EchoValidator(), s)),
        Service("straits.bank.v1.BankService",
                lambda s: bank_pb2_grpc.add_BankServiceServicer_to_server(EchoBank(), s)),
        Service("straits.central_bank.v1.CentralBankService",
                lambda s: central_bank_pb2_grpc.add_CentralBankServiceServicer_to_server(
                    EchoCentralBank(), s)),
    ]
    server, port = create_server(
        ServerSettings(participant_id=NODE, listen="127.0.0.1:0", tls=files, max_workers=4),
        services)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


def connect(address: str, credentials: grpc.ChannelCredentials) -> grpc.Channel:
    # A local subchannel pool keeps each test's handshake its own.
    return grpc.secure_channel(address, credentials,
                               options=[("grpc.use_local_subchannel_pool", 1)])


@pytest.fixture
def channel_for(server_address: str) -> Iterator:
    opened: list[grpc.Channel] = []

    def open_channel(files: TlsFiles) -> grpc.Channel:
        channel = connect(server_address, channel_credentials(files))
        opened.append(channel)
        return channel

    yield open_channel
    for channel in opened:
        channel.close()
