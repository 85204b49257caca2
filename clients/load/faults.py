"""Deliberately bad payments: each must be refused, and the run reports any that were not.

Through a bank node (``BANK_FAULTS``):
- ``duplicate_request``: an earlier payment's request id with different content
  (the node must answer ALREADY_EXISTS and never sign a second payment);
- ``zero_amount``: an amount of 0;
- ``unknown_payee``: a payee that is not a participant.

Straight to the validators (``VALIDATOR_FAULTS``), signed with the bank's ledger key:
- ``bad_signature``: a valid body whose signature has one bit flipped;
- ``resent``: an earlier payment's signed transaction sent again (the ledger must
  answer ALREADY_PENDING / ALREADY_COMMITTED, never carry it twice);
- ``zero_amount`` and ``unknown_payee`` as above, properly signed.

Overdrafts are not among them: a transfer the payer cannot cover joins the payer's
queue by design (it is not a refusal), so it would measure the queue, not admission.
"""

from __future__ import annotations

from straits.bank.v1 import bank_pb2
from straits.ledger.v1 import transaction_pb2 as tx_pb

from clients.load.workload import Order
from ledger import codec
from ledger.keys import PrivateKey

BANK_FAULTS = ("duplicate_request", "zero_amount", "unknown_payee")
VALIDATOR_FAULTS = ("bad_signature", "resent", "zero_amount", "unknown_payee")
UNKNOWN_PAYEE = "no-such-bank"


def instruction(order: Order, request_id: str) -> bank_pb2.TransferInstruction:
    """The instruction a bank client sends for a good order."""
    return bank_pb2.TransferInstruction(
        request_id=request_id, payee=order.payee, amount=order.amount,
        reference=f"load-{order.index}")


def bad_instruction(order: Order, request_id: str,
                    earlier: bank_pb2.TransferInstruction | None) -> bank_pb2.TransferInstruction:
    """The faulty instruction for ``order``; without an earlier one to copy, a duplicate
    becomes an unknown payee (the run's first order cannot repeat anything)."""
    good = instruction(order, request_id)
    if order.fault == "duplicate_request" and earlier is not None:
        good.request_id = earlier.request_id
        good.amount = earlier.amount + 1
    elif order.fault == "zero_amount":
        good.amount = 0
    else:
        good.payee = UNKNOWN_PAYEE
    return good


def transfer_body(order: Order, valid_until_height: int, nonce: int) -> tx_pb.TransactionBody:
    return tx_pb.TransactionBody(
        signer=order.payer, valid_until_height=valid_until_height, nonce=nonce,
        transfer=tx_pb.Transfer(payee=order.payee, amount=order.amount,
                                priority=tx_pb.PRIORITY_NORMAL, reference=f"load-{order.index}"))


def sign_body(chain_id: str, key: PrivateKey,
              body: tx_pb.TransactionBody) -> tuple[bytes, tx_pb.SignedTransaction]:
    """Sign exactly the serialised body, without the structure check ``ledger.transaction.sign``
    makes (a zero amount must reach the validators to be refused there). Returns (id, signed)."""
    body_bytes = codec.encode(body)
    signature = key.sign(codec.signing_bytes(chain_id, codec.TX, body_bytes))
    return codec.transaction_id(chain_id, body_bytes), tx_pb.SignedTransaction(
        body=body_bytes, signature=signature)


def bad_transaction(chain_id: str, key: PrivateKey, order: Order, valid_until_height: int,
                    nonce: int, earlier: tx_pb.SignedTransaction | None
                    ) -> tuple[bytes, tx_pb.SignedTransaction]:
    """The faulty signed transaction for ``order`` and its id; without an earlier one to
    resend, a resend becomes a bad signature."""
    if order.fault == "resent" and earlier is not None:
        return codec.transaction_id(chain_id, earlier.body), earlier
    body = transfer_body(order, valid_until_height, nonce)
    if order.fault == "zero_amount":
        body.transfer.amount = 0
    elif order.fault == "unknown_payee":
        body.transfer.payee = UNKNOWN_PAYEE
    tx_id, signed = sign_body(chain_id, key, body)
    if order.fault in ("bad_signature", "resent"):
        flipped = bytearray(signed.signature)
        flipped[0] ^= 0x01
        signed.signature = bytes(flipped)
    return tx_id, signed
