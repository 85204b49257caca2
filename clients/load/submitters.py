"""The two ways a load run submits payments, behind one call: ``submit(orders)``.

``BankPath`` talks to each payer's bank node as that bank's clients do (one
``SendTransfer``, or ``SendTransfers`` for a batch); the node signs and forwards.
``LedgerPath`` signs with the banks' ledger keys and calls
``ValidatorService.SubmitTransactions`` itself, round-robin over the validators
given, so it measures the ledger alone. Either answers each order with a
``Submitted``: accepted with its transaction id (finality comes from the block
stream), or refused at once with the status and reason.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import grpc
from straits.bank.v1 import bank_pb2, bank_pb2_grpc
from straits.ledger.v1 import transaction_pb2 as tx_pb
from straits.validator.v1 import validator_pb2 as validator_pb
from straits.validator.v1 import validator_pb2_grpc

from clients.load import faults
from clients.load.workload import Order
from clients.sdk import ApiError
from clients.sdk.channel import unary
from ledger.keys import PrivateKey

ACCEPTED = "ACCEPTED"
CALL_TIMEOUT_S = 30.0
_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
_SUBMISSION_NAMES = {
    validator_pb.SUBMISSION_STATUS_ALREADY_PENDING: "ALREADY_PENDING",
    validator_pb.SUBMISSION_STATUS_ALREADY_COMMITTED: "ALREADY_COMMITTED",
}


@dataclass(frozen=True, slots=True)
class Submitted:
    order: Order
    transaction_id: bytes  # empty when refused before the ledger saw it
    status: str  # ACCEPTED, or why not: a gRPC status name, ALREADY_PENDING, ...
    reason: str = ""

    @property
    def accepted(self) -> bool:
        return self.status == ACCEPTED


def _refused_all(orders: Sequence[Order], error: ApiError) -> list[Submitted]:
    return [Submitted(o, b"", error.code.name, error.reason) for o in orders]


class BankPath:
    """Through the bank nodes; ``channels`` maps each bank to its own node, as that bank."""

    def __init__(self, channels: Mapping[str, grpc.Channel], run_tag: str) -> None:
        self._stubs = {bank: bank_pb2_grpc.BankServiceStub(c) for bank, c in channels.items()}
        self._run_tag = run_tag
        self._earlier: dict[str, bank_pb2.TransferInstruction] = {}
        self._lock = threading.Lock()

    def _instruction(self, order: Order) -> bank_pb2.TransferInstruction:
        request_id = f"load-{self._run_tag}-{order.index}"
        if not order.fault:
            return faults.instruction(order, request_id)
        with self._lock:
            earlier = self._earlier.get(order.payer)
        return faults.bad_instruction(order, request_id, earlier)

    def submit(self, orders: Sequence[Order]) -> list[Submitted]:
        stub = self._stubs[orders[0].payer]
        instructions = [self._instruction(o) for o in orders]
        try:
            if len(orders) == 1:
                request = bank_pb2.SendTransferRequest(transfer=instructions[0])
                payment = unary(stub.SendTransfer, request, CALL_TIMEOUT_S).payment
                out = [_from_payment(orders[0], payment)]
                self._remember(out, instructions)
                return out
            answer = unary(stub.SendTransfers,
                           bank_pb2.SendTransfersRequest(transfers=instructions), CALL_TIMEOUT_S)
        except ApiError as error:
            return _refused_all(orders, error)
        out = [
            _from_payment(order, result.payment) if result.HasField("payment")
            else Submitted(order, b"", _CODE_NAMES.get(result.error.status_code, "UNKNOWN"),
                           result.error.reason)
            for order, result in zip(orders, answer.results, strict=True)
        ]
        self._remember(out, instructions)
        return out

    def _remember(self, answers: Sequence[Submitted],
                  instructions: Sequence[bank_pb2.TransferInstruction]) -> None:
        """A duplicate copies only a request the node has already answered: one still in
        flight could arrive after its copy, which would then be the first, not a duplicate."""
        with self._lock:
            for answer, made in zip(answers, instructions, strict=True):
                if answer.accepted and not answer.order.fault:
                    self._earlier[answer.order.payer] = made


def _from_payment(order: Order, payment: bank_pb2.Payment) -> Submitted:
    if payment.status == bank_pb2.PAYMENT_STATUS_REJECTED:
        return Submitted(order, bytes(payment.transfer_id), "REJECTED", payment.reason)
    return Submitted(order, bytes(payment.transfer_id), ACCEPTED)


class LedgerPath:
    """Straight to the validators. ``channels`` maps each bank to one channel per
    validator, opened with that bank's node certificate (a validator takes from a
    bank only what that bank signed); ``height`` gives the newest height seen, and a
    payment is signed valid for ``ahead`` blocks past it.

    ``presign`` signs orders before they are sent, so that a run measuring the ledger
    does not spend its machine on the banks' signing: banks sign on their own machines.
    A presigned payment is sent as signed while more than ``margin`` blocks of its
    validity are left (enough for the blocks that commit while it travels). After that,
    and for a good order that was not presigned (the presigned ones ran out), it is
    signed when sent and counted in ``signed_when_sent``; an order with a fault is always
    signed when sent, and not counted."""

    def __init__(self, chain_id: str, keys: Mapping[str, PrivateKey],
                 channels: Mapping[str, Sequence[grpc.Channel]],
                 height: Callable[[], int], ahead: int) -> None:
        self._chain_id = chain_id
        self._keys = dict(keys)
        self._stubs = {bank: itertools.cycle([validator_pb2_grpc.ValidatorServiceStub(c)
                                              for c in chans])
                       for bank, chans in channels.items()}
        self._height = height
        self._ahead = ahead
        self._earlier: dict[str, tx_pb.SignedTransaction] = {}
        # Order index -> (valid until, (id, signed)), for the orders presigned.
        self._presigned: dict[int, tuple[int, tuple[bytes, tx_pb.SignedTransaction]]] = {}
        self.margin = max(2, ahead // 8)
        self.signed_when_sent = 0  # good orders not sent as presigned
        self._lock = threading.Lock()

    def presign(self, orders: Sequence[Order], valid_until: int) -> None:
        """Sign the good ones of ``orders`` now, valid until ``valid_until``."""
        signed = {
            order.index: (valid_until, faults.sign_body(
                self._chain_id, self._keys[order.payer],
                faults.transfer_body(order, valid_until, secrets.randbits(64))))
            for order in orders if not order.fault
        }
        with self._lock:
            self._presigned.update(signed)

    def _sign(self, order: Order, valid_until: int) -> tuple[bytes, tx_pb.SignedTransaction]:
        key = self._keys[order.payer]
        nonce = secrets.randbits(64)
        if not order.fault:
            return faults.sign_body(
                self._chain_id, key, faults.transfer_body(order, valid_until, nonce))
        with self._lock:
            earlier = self._earlier.get(order.payer)
        return faults.bad_transaction(self._chain_id, key, order, valid_until, nonce, earlier)

    def submit(self, orders: Sequence[Order]) -> list[Submitted]:
        height = self._height()
        valid_until = height + self._ahead
        with self._lock:
            presigned = [self._presigned.pop(o.index, None) for o in orders]
            usable = [p is not None and p[0] - height > self.margin for p in presigned]
            self.signed_when_sent += sum(
                1 for o, ok in zip(orders, usable, strict=True) if not ok and not o.fault
            )
        signed = [
            made[1] if made is not None and ok else self._sign(order, valid_until)
            for order, made, ok in zip(orders, presigned, usable, strict=True)
        ]
        with self._lock:
            stub = next(self._stubs[orders[0].payer])
        request = validator_pb.SubmitTransactionsRequest(transactions=[s for _, s in signed])
        try:
            answer = unary(stub.SubmitTransactions, request, CALL_TIMEOUT_S)
        except ApiError as error:
            return _refused_all(orders, error)
        out = []
        for order, (tx_id, sent), result in zip(orders, signed, answer.results, strict=True):
            if result.status == validator_pb.SUBMISSION_STATUS_ACCEPTED:
                out.append(Submitted(order, tx_id, ACCEPTED))
                if not order.fault:
                    # Resend only what a validator already holds (see BankPath._remember).
                    with self._lock:
                        self._earlier[order.payer] = sent
            elif result.status == validator_pb.SUBMISSION_STATUS_REFUSED:
                out.append(Submitted(order, tx_id, _CODE_NAMES.get(
                    result.error.status_code, "UNKNOWN"), result.error.reason))
            else:
                out.append(Submitted(order, tx_id, _SUBMISSION_NAMES[result.status]))
        return out
