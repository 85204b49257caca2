"""Fixed keys and sample transactions: the inputs of the golden vectors and of the tests.

Everything here is deterministic (keys from fixed seeds and scalars), so a vector
computed from these inputs today must come out byte for byte the same tomorrow.
"""

from __future__ import annotations

from straits.ledger.v1 import transaction_pb2 as tx_pb

from ledger import block, transaction
from ledger.keys import PrivateKey
from ledger.transaction import Transaction

CHAIN_ID = "straits-vectors"

CENTRAL_BANK = "central-bank"
ALPHA_BANK = "alpha-bank"
BETA_BANK = "beta-bank"


def participant_key(participant: str) -> PrivateKey:
    """The fixed signing key of each sample participant."""
    return ed25519_key({CENTRAL_BANK: 1, ALPHA_BANK: 2, BETA_BANK: 3}[participant])


def validator_key(n: int) -> PrivateKey:
    return ed25519_key(10 + n)


def ed25519_key(n: int) -> PrivateKey:
    """The n-th fixed Ed25519 key: seed = 32 bytes of value n."""
    return PrivateKey.from_seed(bytes([n]) * 32)


def p256_key(n: int) -> PrivateKey:
    """The n-th fixed P-256 key: private scalar = 1000 + n."""
    return PrivateKey.from_p256_scalar(1000 + n)


def transfer_body(
    payer: str = ALPHA_BANK,
    payee: str = BETA_BANK,
    amount: int = 125_00,
    *,
    nonce: int = 1,
    priority: int = tx_pb.PRIORITY_NORMAL,
    reference: str = "invoice-42",
    valid_until_height: int = 100,
) -> tx_pb.TransactionBody:
    return tx_pb.TransactionBody(
        signer=payer,
        valid_until_height=valid_until_height,
        nonce=nonce,
        transfer=tx_pb.Transfer(payee=payee, amount=amount, priority=priority, reference=reference),
    )


def issue_body(bank: str = ALPHA_BANK, amount: int = 1_000_000_00) -> tx_pb.TransactionBody:
    return tx_pb.TransactionBody(
        signer=CENTRAL_BANK,
        valid_until_height=100,
        nonce=7,
        issue=tx_pb.Issue(bank=bank, amount=amount, collateral_ref="bond-2031-A"),
    )


def sample_bodies() -> dict[str, tx_pb.TransactionBody]:
    """One body of every transaction kind, named for the vectors file."""
    queued = bytes(range(32))
    return {
        "issue": issue_body(),
        "redeem": tx_pb.TransactionBody(
            signer=ALPHA_BANK,
            valid_until_height=100,
            nonce=2,
            redeem=tx_pb.Redeem(amount=50_00, collateral_ref="bond-2031-A"),
        ),
        "transfer": transfer_body(),
        "transfer_urgent_queued": tx_pb.TransactionBody(
            signer=ALPHA_BANK,
            valid_until_height=100,
            nonce=3,
            transfer=tx_pb.Transfer(
                payee=BETA_BANK,
                amount=9_999_99,
                priority=tx_pb.PRIORITY_URGENT,
                reference="e2e-ref/0001",
                queue_always=True,
            ),
        ),
        "cancel": _queue_op("cancel", tx_pb.CancelQueued(transfer_id=queued)),
        "hold": _queue_op("hold", tx_pb.HoldQueued(transfer_id=queued)),
        "release": _queue_op("release", tx_pb.ReleaseQueued(transfer_id=queued)),
        "reprioritise": _queue_op(
            "reprioritise",
            tx_pb.ReprioritiseQueued(transfer_id=queued, priority=tx_pb.PRIORITY_URGENT),
        ),
        "admit_bank": _governance(
            admit_bank=tx_pb.AdmitBank(
                bank="gamma-bank", key=p256_key(1).public_key.to_proto(), name="Gamma Bank"
            )
        ),
        "suspend_bank": _governance(suspend_bank=tx_pb.SuspendBank(bank=BETA_BANK)),
        "unsuspend_bank": _governance(unsuspend_bank=tx_pb.UnsuspendBank(bank=BETA_BANK)),
        "change_validators": _governance(
            change_validators=tx_pb.ChangeValidators(
                validators=[
                    tx_pb.Validator(id=f"validator-{i}", key=validator_key(i).public_key.to_proto())
                    for i in range(4)
                ],
                effective_height=50,
            )
        ),
        "set_limit": tx_pb.TransactionBody(
            signer=ALPHA_BANK,
            valid_until_height=100,
            nonce=6,
            set_limit=tx_pb.SetLimit(counterparty=BETA_BANK, amount=250_000_00),
        ),
        "close_day": _governance(close_day=tx_pb.CloseDay(day=1)),
    }


def _queue_op(kind: str, op: object) -> tx_pb.TransactionBody:
    return tx_pb.TransactionBody(signer=ALPHA_BANK, valid_until_height=100, nonce=4, **{kind: op})


def _governance(**kind: object) -> tx_pb.TransactionBody:
    return tx_pb.TransactionBody(signer=CENTRAL_BANK, valid_until_height=100, nonce=5, **kind)


def signed_transfers(count: int, key: PrivateKey, *, payer: str = ALPHA_BANK) -> list[Transaction]:
    """``count`` distinct transfers signed by ``key`` (nonce 1..count)."""
    return [
        transaction.sign(CHAIN_ID, key, transfer_body(payer, nonce=n)) for n in range(1, count + 1)
    ]


def simple_block(**header: object) -> block.Block:
    """A block at height 1 with no transactions and zero hashes; ``header`` overrides."""
    fields: dict = {
        "chain_id": CHAIN_ID,
        "height": 1,
        "parent_hash": bytes(32),
        "timestamp_ms": 0,
        "proposer": "validator-0",
        "round": 0,
        "transactions": [],
        "state_root": bytes(32),
        "receipts_root": bytes(32),
    }
    return block.build(**{**fields, **header})
