"""Each role may call what the rule table gives it, and only for its own participant."""

from __future__ import annotations

import grpc
import pytest
from straits.bank.v1 import bank_pb2, bank_pb2_grpc
from straits.central_bank.v1 import central_bank_pb2, central_bank_pb2_grpc
from straits.consensus.v1 import consensus_service_pb2
from straits.validator.v1 import validator_pb2, validator_pb2_grpc

from ledger.roles import Role
from services.common.auth import RULES, Caller, check, rule_for
from services.common.errors import AccessDeniedError
from tests.services.conftest import Pki
from wire.status import details_of

TIMEOUT = 10
OUR_SERVICES = [
    validator_pb2.DESCRIPTOR.services_by_name["ValidatorService"],
    bank_pb2.DESCRIPTOR.services_by_name["BankService"],
    central_bank_pb2.DESCRIPTOR.services_by_name["CentralBankService"],
    consensus_service_pb2.DESCRIPTOR.services_by_name["ConsensusService"],
]


def denied(call, request) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.RpcError) as refused:
        call(request, timeout=TIMEOUT)
    details = details_of(refused.value)
    return details.code, details.reason, details.message


@pytest.mark.parametrize("method", [
    f"/{service.full_name}/{method.name}" for service in OUR_SERVICES for method in service.methods
])
def test_every_rpc_has_a_rule(method: str) -> None:
    assert rule_for(method), f"{method} has no row in auth.RULES: nobody could call it"


def test_method_without_a_rule_is_refused_to_everyone() -> None:
    regulator = Caller("regulator", Role.REGULATOR, "regulator")
    with pytest.raises(AccessDeniedError, match="nobody"):
        check(regulator, "/straits.audit.v1.AuditService/Everything", "validator-1", RULES)


def test_only_validators_speak_consensus() -> None:
    method = "/straits.consensus.v1.ConsensusService/Deliver"
    check(Caller("validator-2", Role.VALIDATOR, "validator-2"), method, "validator-1")
    for role in set(Role) - {Role.VALIDATOR}:
        with pytest.raises(AccessDeniedError):
            check(Caller("bank-a", role, "bank-a"), method, "validator-1")


def test_client_of_another_bank_is_refused_by_this_bank_node(pki: Pki, channel_for) -> None:
    files = pki.issue("bank-b-desk", "bank-b", Role.CLIENT)
    stub = bank_pb2_grpc.BankServiceStub(channel_for(files))
    code, reason, message = denied(stub.GetBalance, bank_pb2.GetBalanceRequest())
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "access_denied"), message
    assert "'bank-a'" in message and "'bank-b'" in message, \
        "the refusal says whose node it is and whose client called"


def test_bank_node_certificate_is_not_a_client_certificate(pki: Pki, channel_for) -> None:
    files = pki.issue("bank-a-node-as-client", "bank-a", Role.BANK)
    stub = bank_pb2_grpc.BankServiceStub(channel_for(files))
    code, _, message = denied(stub.GetBalance, bank_pb2.GetBalanceRequest())
    assert code is grpc.StatusCode.PERMISSION_DENIED, message


def test_bank_cannot_govern(pki: Pki, channel_for) -> None:
    files = pki.issue("bank-a-node-governs", "bank-a", Role.BANK)
    stub = central_bank_pb2_grpc.CentralBankServiceStub(channel_for(files))
    code, _, message = denied(stub.GetTotalSupply, central_bank_pb2.GetTotalSupplyRequest())
    assert code is grpc.StatusCode.PERMISSION_DENIED, message


def test_regulator_reads_but_cannot_submit(pki: Pki, channel_for) -> None:
    files = pki.issue("regulator-audit", "regulator", Role.REGULATOR)
    stub = validator_pb2_grpc.ValidatorServiceStub(channel_for(files))
    answer = stub.GetAccount(validator_pb2.GetAccountRequest(account="bank-b"), timeout=TIMEOUT)
    assert answer.account.id == "bank-b"
    code, _, message = denied(stub.SubmitTransactions, validator_pb2.SubmitTransactionsRequest())
    assert code is grpc.StatusCode.PERMISSION_DENIED, message


def test_bank_reads_its_own_account_and_not_another(pki: Pki, channel_for) -> None:
    files = pki.issue("bank-a-reader", "bank-a", Role.BANK)
    stub = validator_pb2_grpc.ValidatorServiceStub(channel_for(files))
    own = stub.GetAccount(validator_pb2.GetAccountRequest(account="bank-a"), timeout=TIMEOUT)
    assert own.account.id == "bank-a"
    other = validator_pb2.GetAccountRequest(account="bank-b")
    code, reason, message = denied(stub.GetAccount, other)
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "access_denied"), message


def test_bank_may_submit_transactions(pki: Pki, channel_for) -> None:
    files = pki.issue("bank-a-submitter", "bank-a", Role.BANK)
    stub = validator_pb2_grpc.ValidatorServiceStub(channel_for(files))
    answer = stub.SubmitTransactions(validator_pb2.SubmitTransactionsRequest(), timeout=TIMEOUT)
    assert list(answer.results) == []
