"""A validator killed with SIGKILL while payments flow: the others keep settling; restarted,
it catches up from its SQLite file and its peers, and every replica agrees. No payment the
banks' nodes acknowledged is lost or paid twice."""

from __future__ import annotations

import threading
from collections import Counter

from straits.bank.v1 import bank_pb2

from clients.sdk.bank import Instruction
from services.network.launcher import healthy
from tests.e2e.conftest import ProcessNetwork

BANKS = ("bank-a", "bank-b", "bank-c")
OPENING = 10_000_000
BATCH = 20
PACE_S = 0.2  # each payer: a batch every 0.2 s, about 300 payments/s in all
FINAL = {
    bank_pb2.PAYMENT_STATUS_SETTLED,
    bank_pb2.PAYMENT_STATUS_QUEUED,
    bank_pb2.PAYMENT_STATUS_REJECTED,
}


class Payer(threading.Thread):
    """Sends paced batches of small payments round the ring of banks until told to stop.

    Paced, not flat out: a flat-out load grows the chain as fast as the CPU allows, and on
    a 2-core machine running every node a restarted validator then competes for the very
    CPU it needs to catch up. A steady load is what a settlement network sees."""

    def __init__(self, network: ProcessNetwork, bank: str, payee: str) -> None:
        super().__init__(name=f"payer-{bank}", daemon=True)
        self.client = network.bank(bank)
        self.payee = payee
        self.acknowledged: list[bytes] = []
        self.stop = threading.Event()
        self.errors: list[Exception] = []

    def run(self) -> None:
        while not self.stop.wait(PACE_S):
            instructions = [Instruction(self.payee, 1, reference="ring") for _ in range(BATCH)]
            try:
                results = self.client.send_many(instructions)
            except Exception as error:  # recorded and asserted on by the test
                self.errors.append(error)
                return
            self.acknowledged += [r.payment.transfer_id for r in results if r.HasField("payment")]


def heights(network: ProcessNetwork, validators: list[str]) -> list[int]:
    return [network.regulator(v).head().height for v in validators]


def test_a_validator_killed_under_load_catches_up_and_nothing_is_lost_or_doubled(
    process_network: ProcessNetwork,
) -> None:
    network = process_network
    central_bank = network.central_bank()
    for bank in BANKS:
        central_bank.issue(bank, OPENING, collateral_ref=f"{bank}-bond")

    payers = [Payer(network, bank, BANKS[(i + 1) % 3]) for i, bank in enumerate(BANKS)]
    for payer in payers:
        payer.start()
    survivors = ["validator-1", "validator-3", "validator-4"]
    start = max(heights(network, survivors))
    network.wait_for(lambda: min(heights(network, survivors)) >= start + 3, 30, "blocks under load")

    victim = network.launcher.running["validator-2"]
    victim.process.kill()
    victim.process.wait()
    killed_at = max(heights(network, survivors))
    network.wait_for(
        lambda: min(heights(network, survivors)) >= killed_at + 5,
        60,
        "the three survivors to keep committing without validator-2",
    )

    network.launcher.start_node(network.spec("validator-2"))
    network.wait_for(
        lambda: healthy(network.spec("validator-2").address, network.layout.regulator),
        30,
        "validator-2 to serve again",
    )
    network.wait_for(
        lambda: network.regulator("validator-2").head().height >= max(heights(network, survivors)),
        60,
        "the restarted validator-2 to catch up",
    )
    for payer in payers:
        payer.stop.set()
    for payer in payers:
        payer.join(timeout=30)
        assert not payer.errors, f"{payer.name} failed: {payer.errors}"

    acknowledged = [tx for payer in payers for tx in payer.acknowledged]
    assert len(acknowledged) > 30 * BATCH, "expected the load to have run"
    assert len(set(acknowledged)) == len(acknowledged), "a payment id was acknowledged twice"

    # Every acknowledged payment commits, exactly once, on every validator.
    bank_clients = {bank: network.bank(bank) for bank in BANKS}
    owner = {tx: payer.client for payer in payers for tx in payer.acknowledged}
    network.wait_for(
        lambda: all(owner[tx].payment(transfer_id=tx).status in FINAL for tx in acknowledged[-50:]),
        60,
        "the last acknowledged payments to commit",
    )
    network.wait_for(
        lambda: len(set(heights(network, network.validator_ids))) == 1,
        30,
        "all four validators at one height",
    )
    regulators = {v: network.regulator(v) for v in network.validator_ids}
    for tx in acknowledged:
        commits = {v: r.transaction(tx).commit for v, r in regulators.items()}
        assert len({(c.height, c.receipt.outcome) for c in commits.values()}) == 1, (
            f"validators disagree about payment {tx.hex()}: {commits}"
        )

    heads = {v: r.head() for v, r in regulators.items()}
    assert len({(h.height, h.state_root) for h in heads.values()}) == 1, (
        f"replicas disagree: {[(v, h.height, h.state_root.hex()[:16]) for v, h in heads.items()]}"
    )
    # Each payment is 1 unit round a ring: balances move, the total stays what was issued.
    balances = [bank_clients[b].balance().balance for b in BANKS]
    assert sum(balances) == 3 * OPENING
    # A payment refused at the door (the validators pushed back) is in the bank's history as
    # refused and never reaches a block; every acknowledged one is in a block exactly once.
    committed = FINAL | {bank_pb2.PAYMENT_STATUS_CANCELLED}
    for payer, bank in zip(payers, BANKS, strict=True):
        outgoing = [
            p for p in bank_clients[bank].history() if p.direction == bank_pb2.DIRECTION_OUTGOING
        ]
        ids = [p.transfer_id for p in outgoing]
        assert len(ids) == len(set(ids)), f"{bank}: a payment appears twice in history"
        in_blocks = {p.transfer_id for p in outgoing if p.status in committed}
        unacknowledged = Counter(
            bank_pb2.PaymentStatus.Name(p.status)
            for p in outgoing
            if p.transfer_id not in set(payer.acknowledged)
        )
        assert in_blocks == set(payer.acknowledged), (
            f"{bank}: {len(in_blocks - set(payer.acknowledged))} payments in blocks were never "
            f"acknowledged, {len(set(payer.acknowledged) - in_blocks)} acknowledged are not in "
            f"blocks; statuses of the unacknowledged: {dict(unacknowledged)}"
        )
