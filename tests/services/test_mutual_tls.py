"""The caller is who its certificate says, and nobody else gets through the handshake."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from straits.bank.v1 import bank_pb2, bank_pb2_grpc

from ledger.roles import Role
from services.common.pki import CertificateAuthority, Credential, Identity
from tests.services.conftest import Pki, connect
from wire.status import details_of
from wire.tls import TlsFiles

TIMEOUT = 10


def balance_of(channel: grpc.Channel) -> bank_pb2.GetBalanceResponse:
    return bank_pb2_grpc.BankServiceStub(channel).GetBalance(
        bank_pb2.GetBalanceRequest(), timeout=TIMEOUT)


def refused_code(channel: grpc.Channel) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as refused:
        balance_of(channel)
    return refused.value.code()


def test_bank_client_is_known_by_its_certificate_alone(pki: Pki, channel_for) -> None:
    files = pki.issue("treasury-desk", "bank-a", Role.CLIENT)
    answer = balance_of(channel_for(files))
    assert (answer.account.id, answer.account.name) == ("bank-a", "treasury-desk"), \
        "the servicer must see the participant and name carried by the client certificate"


def test_connection_without_client_certificate_is_refused_in_handshake(
        pki: Pki, server_address: str) -> None:
    anonymous = grpc.ssl_channel_credentials(root_certificates=(pki.directory / "ca.crt")
                                             .read_bytes())
    with connect(server_address, anonymous) as channel:
        assert refused_code(channel) is grpc.StatusCode.UNAVAILABLE


def test_certificate_from_a_foreign_ca_is_refused(pki: Pki, channel_for, tmp_path) -> None:
    now = dt.datetime.now(dt.UTC)
    foreign = CertificateAuthority.create("impostor", now=now)
    credential = foreign.issue(Identity("bank-a", Role.CLIENT), now=now)
    files = TlsFiles(pki.directory / "ca.crt", tmp_path / "f.crt", tmp_path / "f.key")
    credential.save(files.certificate, files.key)
    assert refused_code(channel_for(files)) is grpc.StatusCode.UNAVAILABLE


def test_expired_certificate_is_refused(pki: Pki, channel_for) -> None:
    month_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    files = pki.issue("expired", "bank-a", Role.CLIENT, now=month_ago,
                      valid_for=dt.timedelta(days=1))
    assert refused_code(channel_for(files)) is grpc.StatusCode.UNAVAILABLE


def test_client_refuses_a_server_its_ca_did_not_certify(pki: Pki, server_address, tmp_path):
    now = dt.datetime.now(dt.UTC)
    other = CertificateAuthority.create("elsewhere", now=now)
    files = pki.issue("wary-client", "bank-a", Role.CLIENT)
    (tmp_path / "other-ca.crt").write_bytes(other.credential.certificate_pem)
    trusting_other = grpc.ssl_channel_credentials(
        root_certificates=(tmp_path / "other-ca.crt").read_bytes(),
        private_key=files.key.read_bytes(), certificate_chain=files.certificate.read_bytes())
    with connect(server_address, trusting_other) as channel:
        assert refused_code(channel) is grpc.StatusCode.UNAVAILABLE


def test_certificate_without_straits_identity_is_unauthenticated(pki: Pki, channel_for,
                                                                  tmp_path) -> None:
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nameless")]))
        .issuer_name(pki.ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(pki.ca.credential.key, hashes.SHA256())
    )
    files = pki.save("nameless", Credential(certificate, key))
    with pytest.raises(grpc.RpcError) as refused:
        balance_of(channel_for(files))
    details = details_of(refused.value)
    assert (details.code, details.reason) == (grpc.StatusCode.UNAUTHENTICATED, "bad_certificate")


def test_every_participant_may_ask_for_health(pki: Pki, channel_for) -> None:
    files = pki.issue("regulator-tool", "regulator", Role.REGULATOR)
    health = health_pb2_grpc.HealthStub(channel_for(files))
    answer = health.Check(
        health_pb2.HealthCheckRequest(service="straits.bank.v1.BankService"), timeout=TIMEOUT)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_node_services(pki: Pki, channel_for) -> None:
    files = pki.issue("grpcurl-user", "bank-a", Role.CLIENT)
    services = set(ProtoReflectionDescriptorDatabase(channel_for(files)).get_services())
    assert {"straits.bank.v1.BankService", "straits.validator.v1.ValidatorService",
            "grpc.health.v1.Health"} <= services, services
