"""The regulator's row in the rule table: every read of our services, and no write."""

from __future__ import annotations

from straits.bank.v1 import bank_pb2
from straits.central_bank.v1 import central_bank_pb2
from straits.consensus.v1 import consensus_service_pb2
from straits.validator.v1 import validator_pb2

from ledger.roles import Role
from services.common.auth import rule_for

SERVICES = [
    validator_pb2.DESCRIPTOR.services_by_name["ValidatorService"],
    bank_pb2.DESCRIPTOR.services_by_name["BankService"],
    central_bank_pb2.DESCRIPTOR.services_by_name["CentralBankService"],
    consensus_service_pb2.DESCRIPTOR.services_by_name["ConsensusService"],
]
READS = {
    "ValidatorService": {"GetTransaction", "GetBlocks", "StreamBlocks", "GetAccount",
                         "GetAccounts", "GetHead"},
    "BankService": {"GetBalance", "ListQueue", "ListHistory", "GetPayment", "WatchSettlements"},
    "CentralBankService": {"GetTotalSupply", "ListPositions"},
    "ConsensusService": set(),
}


def test_the_regulator_may_call_every_read_and_no_write() -> None:
    for service in SERVICES:
        allowed = {m.name for m in service.methods
                   if Role.REGULATOR in rule_for(f"/{service.full_name}/{m.name}")}
        assert allowed == READS[service.name], service.name


def test_a_banks_clients_keep_every_method_of_their_node() -> None:
    bank = SERVICES[1]
    assert all(Role.CLIENT in rule_for(f"/{bank.full_name}/{m.name}") for m in bank.methods)
