"""The central bank's node: ``CentralBankNode(config).start() -> port`` and ``.stop()``.

It holds the central bank's ledger key and serves ``CentralBankService`` to the
central bank's own clients, with the same machinery as a bank node
(``ParticipantNode``): every operation that writes is signed here, recorded before it
leaves, forwarded with failover and answered once a followed block carries it, with
the receipt. Issue is idempotent by ``request_id``. The central bank sees whole blocks,
so the node keeps the issued and redeemed totals itself, block by block, next to its
follow position.
"""

from __future__ import annotations

import sqlite3

from straits.central_bank.v1 import central_bank_pb2 as pb
from straits.central_bank.v1 import central_bank_pb2_grpc as pb_grpc
from straits.common.v1 import common_pb2 as common_pb
from straits.ledger.v1 import receipt_pb2 as receipt_pb
from straits.ledger.v1 import transaction_pb2 as tx_pb
from straits.validator.v1 import validator_pb2 as validator_pb

from ledger.errors import expected
from ledger.transaction import Transaction
from services.common.errors import InvalidRequestError, NotFoundError
from services.common.server import Service
from services.participant.central_bank.servicer import CentralBankServicer
from services.participant.follower import FollowedBlock
from services.participant.node import (
    ParticipantNode,
    Request,
    check_request_id,
    fingerprint,
)
from services.participant.outbox import NodeDb

CENTRAL_BANK_SERVICE = "straits.central_bank.v1.CentralBankService"


class CentralBankNode(ParticipantNode):
    sees_whole_blocks = True

    def _setup(self, db: NodeDb) -> None:
        self._db = db

    def _services(self) -> list[Service]:
        servicer = CentralBankServicer(self)
        return [
            Service(
                CENTRAL_BANK_SERVICE,
                lambda s: pb_grpc.add_CentralBankServiceServicer_to_server(servicer, s),
            )
        ]

    def _record_block(
        self, conn: sqlite3.Connection, block: FollowedBlock, expired: list[bytes]
    ) -> None:
        issued = redeemed = 0
        for tx in block.transactions:
            receipt = block.receipts.get(tx.id)
            if receipt is None or receipt.outcome != receipt_pb.OUTCOME_APPLIED:
                continue
            if tx.kind == "issue":
                issued += tx.body.issue.amount
            elif tx.kind == "redeem":
                redeemed += tx.body.redeem.amount
        if issued or redeemed:
            totals = self._totals()
            NodeDb.set_meta(conn, "issued", totals[0] + issued)
            NodeDb.set_meta(conn, "redeemed", totals[1] + redeemed)

    def _totals(self) -> tuple[int, int]:
        return (int(self._db.get_meta("issued", 0)), int(self._db.get_meta("redeemed", 0)))

    def _governance(self, timeout: float, **kind: object) -> common_pb.Commit:
        entry = self.record(Request(None, b"", lambda: self.sign(**kind)))
        return self.send_and_wait(entry, timeout)

    def issue(self, request: pb.IssueRequest, timeout: float) -> common_pb.Commit:
        check_request_id(request.request_id)
        content = pb.IssueRequest(
            bank=request.bank, amount=request.amount, collateral_ref=request.collateral_ref
        )
        issue = tx_pb.Issue(
            bank=request.bank, amount=request.amount, collateral_ref=request.collateral_ref
        )
        entry = self.record(
            Request(request.request_id, fingerprint(content), lambda: self.sign(issue=issue))
        )
        return self.send_and_wait(entry, timeout)

    def present_redemption(
        self, signed: tx_pb.SignedTransaction, timeout: float
    ) -> common_pb.Commit:
        """The commit of a redemption the bank signed. One the bank already sent
        (``BankService.Redeem``) is looked up; any other is forwarded and waited for
        (validators let the central bank present a redeem its bank signed)."""
        tx = Transaction.from_proto(self.chain_id, signed)
        if tx.kind != "redeem":
            raise InvalidRequestError(
                expected("a signed redeem", tx.kind or "no kind"), field="redemption"
            )
        try:
            known = self.upstream.call(
                "GetTransaction", validator_pb.GetTransactionRequest(transaction_id=tx.id)
            )
            if known.status == validator_pb.TRANSACTION_STATUS_COMMITTED:
                return known.commit
        except NotFoundError:
            pass  # not seen yet: forward it
        entry = self.outbox.by_id(tx.id) or self.record(Request(None, b"", lambda: tx))
        return self.send_and_wait(entry, timeout)

    def admit(self, request: pb.AdmitBankRequest, timeout: float) -> common_pb.Commit:
        return self._governance(
            timeout,
            admit_bank=tx_pb.AdmitBank(bank=request.bank, key=request.key, name=request.name),
        )

    def suspend(self, bank: str, timeout: float) -> common_pb.Commit:
        return self._governance(timeout, suspend_bank=tx_pb.SuspendBank(bank=bank))

    def unsuspend(self, bank: str, timeout: float) -> common_pb.Commit:
        return self._governance(timeout, unsuspend_bank=tx_pb.UnsuspendBank(bank=bank))

    def change_validators(
        self, request: pb.ProposeValidatorChangeRequest, timeout: float
    ) -> common_pb.Commit:
        return self._governance(
            timeout,
            change_validators=tx_pb.ChangeValidators(
                validators=request.validators, effective_height=request.effective_height
            ),
        )

    def total_supply(self) -> pb.GetTotalSupplyResponse:
        with self._db.lock:
            issued, redeemed = self._totals()
            height = self.height
        return pb.GetTotalSupplyResponse(
            total_supply=issued - redeemed, issued=issued, redeemed=redeemed, height=height
        )

    def close_day(self, day: int, timeout: float) -> common_pb.Commit:
        return self._governance(timeout, close_day=tx_pb.CloseDay(day=day))

    def positions(self, page_size: int, page_token: str) -> validator_pb.GetAccountsResponse:
        return self.upstream.call_fresh(
            "GetAccounts",
            validator_pb.GetAccountsRequest(page_size=page_size, page_token=page_token),
            self.height,
        )
