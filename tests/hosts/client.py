"""The test's hands inside the client host's namespace: no test traffic leaves the root
namespace, so the test runs this process in a namespace of its own and asks it, one
JSON line per request on stdin, to pay and to read heads and payments over gRPC.

    python -m tests.hosts.client ADDRESSES_JSON HOSTS_DIR
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from straits.bank.v1 import bank_pb2 as pb
from straits.ledger.v1 import block_pb2 as block_pb

from clients.sdk import ApiError, BankClient, CentralBankClient, RegulatorClient, open_channel
from clients.sdk.channel import new_request_id
from wire.tls import TlsFiles

TIMEOUT_S = 5.0


class Hands:
    def __init__(self, addresses: dict[str, str], hosts: Path) -> None:
        self.addresses = addresses
        self.hosts = hosts
        self.channels: dict[tuple[str, str], Any] = {}

    def _channel(self, node: str, identity: str) -> Any:
        key = (node, identity)
        if key not in self.channels:
            folder = self.hosts / identity
            self.channels[key] = open_channel(
                self.addresses[node],
                TlsFiles(folder / "ca.crt", folder / "tls.crt", folder / "tls.key"))
        return self.channels[key]

    def bank(self, bank: str) -> BankClient:
        return BankClient(self._channel(bank, f"{bank}-client"), timeout=TIMEOUT_S)

    def regulator(self, validator: str) -> RegulatorClient:
        return RegulatorClient(self._channel(validator, "regulator"), timeout=TIMEOUT_S)

    def issue(self, bank: str, amount: int) -> dict[str, Any]:
        commit = CentralBankClient(self._channel("central-bank", "central-bank-client")).issue(
            bank, amount, f"bond-{bank}")
        return {"height": commit.height}

    def supply(self) -> int:
        issuer = CentralBankClient(self._channel("central-bank", "central-bank-client"),
                              timeout=TIMEOUT_S)
        return int(issuer.total_supply().total_supply)

    def send(self, bank: str, payee: str, amount: int, count: int) -> dict[str, Any]:
        """Sends ``count`` payments without waiting for their blocks; the acknowledged ones
        (the bank node signed and took them) are what must settle exactly once."""
        acknowledged, refused = [], []
        client = self.bank(bank)
        for _ in range(count):
            try:
                payment = client.send(payee, amount, request_id=new_request_id())
                acknowledged.append(payment.transfer_id.hex())
            except ApiError as error:
                refused.append(f"{error.code.name}: {error.message}")
        return {"acknowledged": acknowledged, "refused": refused}

    def statuses(self, bank: str, ids: list[str]) -> dict[str, str]:
        client = self.bank(bank)
        return {i: pb.PaymentStatus.Name(client.payment(transfer_id=bytes.fromhex(i)).status)
                for i in ids}

    def outgoing(self, bank: str) -> list[str]:
        return [p.transfer_id.hex() for p in self.bank(bank).history(
            direction=pb.DIRECTION_OUTGOING)]

    def balance(self, bank: str) -> int:
        return int(self.bank(bank).balance().balance)

    def heads(self, validators: list[str]) -> dict[str, Any]:
        heads: dict[str, Any] = {}
        for v in validators:
            try:
                head = self.regulator(v).head()
                heads[v] = [head.height, head.state_root.hex(), head.block_hash.hex()]
            except ApiError:
                heads[v] = None
        return heads

    def proposer(self, validator: str, height: int) -> str:
        (view,) = self.regulator(validator).blocks(height, 1)[:1]
        return str(block_pb.BlockHeader.FromString(view.block.header).proposer)

    def commits(self, ids: list[str], validators: list[str]) -> dict[str, list[Any]]:
        """For each transaction, the (height, outcome) every validator records for it."""
        regulators = {v: self.regulator(v) for v in validators}
        return {i: sorted({(c.height, int(c.receipt.outcome))
                           for c in (r.transaction(bytes.fromhex(i)).commit
                                     for r in regulators.values())})
                for i in ids}


def main() -> int:
    hands = Hands(json.loads(sys.argv[1]), Path(sys.argv[2]))
    operations: dict[str, Callable[..., Any]] = {
        name: getattr(hands, name) for name in
        ("issue", "supply", "send", "statuses", "outgoing", "balance", "heads", "proposer",
         "commits")}
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            result = {"ok": operations[request.pop("op")](**request)}
        except ApiError as error:
            result = {"error": f"{error.code.name}: {error.message}"}
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
