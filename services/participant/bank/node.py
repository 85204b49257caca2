"""A member bank's node: ``BankNode(config).start() -> port`` and ``.stop()``.

It holds the bank's ledger key and serves ``BankService`` to the bank's own clients
(certificates with role ``client`` for this bank). Everything that moves money goes
through ``ParticipantNode``: signed here, recorded with its request id before it
leaves, forwarded in batches to the validators with failover, followed to finality.
The bank's payments, queue and history are the ``PaymentBook`` built from the
followed blocks (with the central bank's issuances to the bank and the bank's
redemptions); balance and position are read from a validator.

    straits bank --config nodes/bank-a/node.toml
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence

from straits.bank.v1 import bank_pb2 as pb
from straits.bank.v1 import bank_pb2_grpc as pb_grpc
from straits.common.v1 import common_pb2 as common_pb
from straits.ledger.v1 import transaction_pb2 as tx_pb
from straits.validator.v1 import validator_pb2 as validator_pb

from ledger.errors import NotQueuedError, StraitsError, expected
from ledger.transaction import Transaction
from services.common.errors import NotFoundError
from services.common.server import Service
from services.participant.bank.payments import OUT, PaymentBook
from services.participant.bank.servicer import BankServicer
from services.participant.follower import FollowedBlock
from services.participant.node import (
    NOT_FINAL_REASONS,
    ParticipantNode,
    Request,
    check_request_id,
    fingerprint,
)
from services.participant.outbox import PENDING, NodeDb
from services.participant.upstream import item_error

BANK_SERVICE = "straits.bank.v1.BankService"


class BankNode(ParticipantNode):
    exports_payments = True

    def _setup(self, db: NodeDb) -> None:
        self.book = PaymentBook(db, self.participant_id, self.genesis.central_bank.id)
        self.events = threading.Condition()

    def _services(self) -> list[Service]:
        servicer = BankServicer(self)
        return [
            Service(BANK_SERVICE, lambda s: pb_grpc.add_BankServiceServicer_to_server(servicer, s))
        ]

    def _record_block(
        self, conn: sqlite3.Connection, block: FollowedBlock, expired: list[bytes]
    ) -> None:
        self.book.record_block(conn, block, expired)

    def _after_block(self, block: FollowedBlock) -> None:
        with self.events:
            self.events.notify_all()

    @property
    def running(self) -> bool:
        return self._running

    # --- transfers -----------------------------------------------------------------------

    def send(
        self, instructions: Sequence[pb.TransferInstruction], *, wait: bool, timeout: float
    ) -> list[pb.Payment | StraitsError]:
        """One payment or error per instruction, in order; never signs twice for a request."""
        outcomes: list[pb.Payment | StraitsError | Transaction] = []
        requests: list[tuple[int, Request]] = []
        for at, instruction in enumerate(instructions):
            try:
                requests.append((at, self._transfer_request(instruction)))
                outcomes.append(NotFoundError(expected("a recorded payment", "none")))
            except StraitsError as error:
                outcomes.append(error)
        recorded = self.record_many([r for _, r in requests])
        fresh: list[tuple[int, Transaction]] = []
        for (at, _), result in zip(requests, recorded, strict=True):
            if isinstance(result, StraitsError):
                outcomes[at] = result
            elif result.error is not None:
                outcomes[at] = item_error(result.error)
            else:
                outcomes[at] = result.transaction
                if result.state == PENDING:
                    fresh.append((at, result.transaction))
        if fresh:
            errors = self.forward([tx for _, tx in fresh], timeout)
            for (at, tx), error in zip(fresh, errors, strict=True):
                # A passing refusal (overload, outage) leaves the payment recorded and
                # pending: the resender delivers it, so the client is told PENDING, never
                # an error for a payment that will still be made.
                if error is not None and error.reason not in NOT_FINAL_REASONS:
                    self.book.refused(tx.id, error)
                    outcomes[at] = item_error(error)
        if wait:
            self.wait_final([o.id for o in outcomes if isinstance(o, Transaction)], timeout)
        payments = self.book.payments([o.id for o in outcomes if isinstance(o, Transaction)])
        return [
            payments.get(o.id, NotFoundError(expected("a recorded payment", o.id.hex())))
            if isinstance(o, Transaction)
            else o
            for o in outcomes
        ]

    def _transfer_request(self, instruction: pb.TransferInstruction) -> Request:
        request_id = instruction.request_id
        check_request_id(request_id, "transfer.request_id")
        transfer = tx_pb.Transfer(
            payee=instruction.payee,
            amount=instruction.amount,
            priority=instruction.priority or tx_pb.PRIORITY_NORMAL,
            reference=instruction.reference,
            queue_always=instruction.queue_always,
        )
        content = pb.TransferInstruction()
        content.CopyFrom(instruction)
        content.request_id = ""
        content.priority = transfer.priority

        def add(conn: sqlite3.Connection, tx: Transaction) -> None:
            PaymentBook.add_outgoing(conn, tx, request_id)

        return Request(request_id, fingerprint(content), lambda: self.sign(transfer=transfer), add)

    def payment(self, *, transfer_id: bytes = b"", request_id: str = "") -> pb.Payment:
        if request_id:
            entry = self.outbox.by_request(request_id)
            transfer_id = entry.transaction.id if entry is not None else b""
        payment = self.book.payment(transfer_id) if transfer_id else None
        if payment is None:
            raise NotFoundError(
                expected("a payment of this bank", request_id or transfer_id.hex()),
                field="request_id" if request_id else "transfer_id",
            )
        return payment

    # --- queue operations and redemption ---------------------------------------------------

    def operate(
        self, kind: str, transfer_id: bytes, timeout: float, priority: int = 0
    ) -> tuple[common_pb.Commit, pb.Payment]:
        """Cancel, hold, release or reprioritise a queued outgoing payment; waits for the
        block. A payment this node knows not to be queued fails with ``not_queued``."""
        payment = self.book.payment(bytes(transfer_id))
        if payment is None or payment.direction != OUT:
            raise NotFoundError(
                expected("a payment this bank sent", transfer_id.hex()), field="transfer_id"
            )
        if payment.status != pb.PAYMENT_STATUS_QUEUED:
            raise NotQueuedError(
                expected("a queued payment", pb.PaymentStatus.Name(payment.status)),
                field="transfer_id",
            )
        operation = {
            "cancel": lambda: tx_pb.CancelQueued(transfer_id=transfer_id),
            "hold": lambda: tx_pb.HoldQueued(transfer_id=transfer_id),
            "release": lambda: tx_pb.ReleaseQueued(transfer_id=transfer_id),
            "reprioritise": lambda: tx_pb.ReprioritiseQueued(
                transfer_id=transfer_id, priority=priority
            ),
        }[kind]()
        entry = self.record(Request(None, b"", lambda: self.sign(**{kind: operation})))
        commit = self.send_and_wait(entry, timeout)
        return commit, self.payment(transfer_id=transfer_id)

    def redeem(self, request: pb.RedeemRequest, timeout: float) -> common_pb.Commit:
        check_request_id(request.request_id)
        redeem = tx_pb.Redeem(amount=request.amount, collateral_ref=request.collateral_ref)
        content = pb.RedeemRequest(amount=request.amount, collateral_ref=request.collateral_ref)
        entry = self.record(
            Request(request.request_id, fingerprint(content), lambda: self.sign(redeem=redeem))
        )
        return self.send_and_wait(entry, timeout)

    def set_limit(self, request: pb.SetLimitRequest, timeout: float) -> common_pb.Commit:
        limit = tx_pb.SetLimit(
            counterparty=request.counterparty, amount=request.amount, remove=request.remove
        )
        entry = self.record(Request(None, b"", lambda: self.sign(set_limit=limit)))
        return self.send_and_wait(entry, timeout)

    # --- reads from a validator --------------------------------------------------------------

    def balance(self) -> validator_pb.GetAccountResponse:
        return self.upstream.call_fresh(
            "GetAccount", validator_pb.GetAccountRequest(account=self.participant_id), self.height
        )
