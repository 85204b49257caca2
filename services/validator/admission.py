"""Admission: the chain of checks a transaction passes before it enters the mempool.

In order, cheapest first, each with a named result per transaction:

1. structure: the bytes decode and every field is in range (``Transaction.from_proto``);
2. the sender: a bank or the central bank submits only what it signed itself (the
   TLS certificate names the caller; the ledger key proves the signature), except that
   the central bank may present a redemption its bank signed;
3. the chain: known signer, inside its validity window, not already committed
   (answered ALREADY_COMMITTED: a retry, not an error), not already pending;
4. signatures, all of the batch in one call to the batch verifier, whose cache
   then spares the same check when the transaction comes back inside a block;
5. business rules, by executing the batch against the head state on a scratch
   copy: a transfer to an unknown or suspended bank, a redeem beyond the balance,
   a governance transaction from a bank is refused now, with its reason, rather
   than committed as REJECTED;
6. room in the mempool, else RESOURCE_EXHAUSTED.

Transactions shared by another validator go through steps 1, 3, 4 and 6: the
validator that took them from their bank has already checked the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from straits.ledger.v1 import receipt_pb2 as receipt_pb
from straits.ledger.v1 import transaction_pb2 as tx_pb
from straits.validator.v1 import validator_pb2 as validator_pb

from ledger.errors import (
    BadSignatureError,
    NotPermittedError,
    RejectedError,
    ReplayError,
    StraitsError,
    expected,
)
from ledger.execute import AlreadyVerified, SignatureCheck, admission_error, execute, key_lookup
from ledger.genesis import CENTRAL_BANK
from ledger.state import State
from ledger.transaction import Transaction
from services.common.errors import OverloadedError, to_error_proto
from services.validator.chain import Chain
from services.validator.mempool import Admission, Mempool

ACCEPTED = validator_pb.SUBMISSION_STATUS_ACCEPTED
PENDING = validator_pb.SUBMISSION_STATUS_ALREADY_PENDING
COMMITTED = validator_pb.SUBMISSION_STATUS_ALREADY_COMMITTED
REFUSED = validator_pb.SUBMISSION_STATUS_REFUSED
_TRUSTED = AlreadyVerified()


def _refused(tx_id: bytes, error: StraitsError) -> validator_pb.SubmissionResult:
    return validator_pb.SubmissionResult(
        transaction_id=tx_id, status=REFUSED, error=to_error_proto(error)
    )


class Admitter:
    def __init__(
        self,
        chain: Chain,
        mempool: Mempool,
        verify: SignatureCheck,
        on_admitted: Callable[[list[Transaction]], None],
    ) -> None:
        self._chain = chain
        self._mempool = mempool
        self._verify = verify
        self._on_admitted = on_admitted

    def admit(
        self,
        signed: Sequence[tx_pb.SignedTransaction],
        *,
        sender: str | None,
        check_rules: bool,
    ) -> list[validator_pb.SubmissionResult]:
        """One result per item, in order. ``sender`` None: shared by another validator."""
        state = self._chain.state
        height = state.height + 1
        results: list[validator_pb.SubmissionResult | None] = [None] * len(signed)
        candidates: list[tuple[int, Transaction]] = []
        for index, message in enumerate(signed):
            try:
                tx = Transaction.from_proto(state.chain_id, message)
            except StraitsError as error:
                results[index] = _refused(b"", error)
                continue
            error = admission_error(state, tx, height)
            if sender is not None and not _may_submit(state, sender, tx):
                error = NotPermittedError(
                    expected(f"a transaction signed by the caller {sender!r}", tx.signer),
                    field="signer",
                )
            if isinstance(error, ReplayError):
                results[index] = validator_pb.SubmissionResult(
                    transaction_id=tx.id, status=COMMITTED
                )
            elif error is not None:
                results[index] = _refused(tx.id, error)
            elif tx.id in self._mempool:
                results[index] = validator_pb.SubmissionResult(transaction_id=tx.id, status=PENDING)
            else:
                candidates.append((index, tx))

        key_of = key_lookup(state)
        verdicts = self._verify.verify_transactions([tx for _, tx in candidates], key_of)
        signed_ok = []
        for (index, tx), good in zip(candidates, verdicts, strict=True):
            if good:
                signed_ok.append((index, tx))
            else:
                results[index] = _refused(
                    tx.id, BadSignatureError(f"expected a valid signature by {tx.signer}'s key")
                )

        if check_rules:
            signed_ok = self._check_rules(state, signed_ok, results)

        added = []
        admissions = self._mempool.add([tx for _, tx in signed_ok])
        for (index, tx), admission in zip(signed_ok, admissions, strict=True):
            if admission is Admission.FULL:
                results[index] = _refused(
                    tx.id,
                    OverloadedError(
                        f"expected room in the mempool (capacity {self._mempool.capacity})"
                    ),
                )
            else:
                status = ACCEPTED if admission is Admission.ADDED else PENDING
                results[index] = validator_pb.SubmissionResult(transaction_id=tx.id, status=status)
                if admission is Admission.ADDED:
                    added.append(tx)
        if added:
            self._on_admitted(added)
        return [r for r in results if r is not None]

    def _check_rules(
        self,
        state: State,
        candidates: list[tuple[int, Transaction]],
        results: list[validator_pb.SubmissionResult | None],
    ) -> list[tuple[int, Transaction]]:
        kept = []
        limit = state.parameters.max_block_transactions
        for start in range(0, len(candidates), limit):
            chunk = candidates[start : start + limit]
            execution = execute(state, [tx for _, tx in chunk], verify=_TRUSTED, strict=False)
            outcome = {r.transaction_id: r for r in execution.receipts}
            for index, tx in chunk:
                receipt = outcome.get(tx.id)
                if receipt is not None and receipt.outcome == receipt_pb.OUTCOME_REJECTED:
                    results[index] = _refused(tx.id, _rejection(receipt))
                else:
                    kept.append((index, tx))
        return kept


def _may_submit(state: State, sender: str, tx: Transaction) -> bool:
    """A participant submits what it signed; the central bank may also present a
    redemption a bank signed (the bank's signature is its consent to destroy the tokens)."""
    if tx.signer == sender:
        return True
    participant = state.participants.get(sender)
    return participant is not None and participant.role == CENTRAL_BANK and tx.kind == "redeem"


def _subclasses(cls: type[RejectedError]) -> list[type[RejectedError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += _subclasses(sub)
    return found


# A receipt names its rule's error by code; the caller gets that same error class,
# so its gRPC status comes from the one table in services.common.errors.
_REJECTIONS = {cls.code: cls for cls in _subclasses(RejectedError)}


def _rejection(receipt: receipt_pb.Receipt) -> RejectedError:
    return _REJECTIONS.get(receipt.reason, RejectedError)(receipt.detail)
