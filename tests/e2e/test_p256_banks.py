"""Banks with ECDSA P-256 ledger keys: `straits network init --bank-key-type ecdsa-p256`
writes them into genesis and the banks' key files, and a network of real processes
settles their payments, each signature checked by the validators as P-256."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from straits.bank.v1 import bank_pb2

from clients.load.endpoints import from_network
from clients.sdk import BankClient, CentralBankClient, RegulatorClient, open_channel
from ledger import genesis as genesis_file
from ledger.keys import KeyType, PrivateKey
from services.network.launcher import Launcher
from tests.bank.network import free_base_port

SETTLED = bank_pb2.PAYMENT_STATUS_SETTLED


def test_banks_with_p256_keys_pay_each_other_on_a_network_of_processes(tmp_path: Path) -> None:
    directory = tmp_path / "network"
    subprocess.run(
        [sys.executable, "-m", "clients.cli.main", "network", "init", "--dir", str(directory),
         "--validators", "1", "--banks", "2", "--base-port", str(free_base_port()),
         "--bank-key-type", "ecdsa-p256"],
        check=True, capture_output=True, text=True,
    )
    genesis = genesis_file.load(directory / "genesis.json")
    types = {p.id: p.key.type for p in genesis.participants}
    assert types["bank-a"] is KeyType.ECDSA_P256 and types["bank-b"] is KeyType.ECDSA_P256
    assert types["central-bank"] is KeyType.ED25519
    assert all(v.key.type is KeyType.ED25519 for v in genesis.validators)
    key = PrivateKey.load(directory / "nodes" / "bank-a" / "ledger.key")
    assert key.public_key == next(p.key for p in genesis.participants if p.id == "bank-a")

    launcher = Launcher(directory, log_level="WARNING")
    launcher.start()
    endpoints = from_network(directory)
    banks = {b.bank: b for b in endpoints.banks}
    channels = [
        open_channel(*endpoints.central_bank),
        open_channel(banks["bank-a"].node_address, banks["bank-a"].client_tls),
        open_channel(endpoints.validators[0], endpoints.regulator_tls),
    ]
    try:
        CentralBankClient(channels[0]).issue("bank-a", 1_000_00, "bond-1")
        payment = BankClient(channels[1]).send("bank-b", 400_00, reference="p256", wait=True)
        assert payment.status == SETTLED, payment
        regulator = RegulatorClient(channels[2])
        assert regulator.account("bank-a").balance == 600_00
        assert regulator.account("bank-b").balance == 400_00
    finally:
        for c in channels:
            c.close()
        launcher.stop()
