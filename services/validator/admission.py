"""Admission: the chain of checks a transaction passes before it enters the mempool.

A batch goes through named stages, cheapest first. Each stage takes what the stage
before it kept and returns a ``Sifted``: what it kept, what it refused with the error
(of the one hierarchy, so its gRPC status comes from the one table in
``services.common.errors``), and what it recognised as already known (a retry, answered
as a success rather than an error):

1. ``check_structure``: the bytes decode and every field is in range
   (``Transaction.from_proto``);
2. ``check_chain``: right chain, known signer, inside its validity window
   (``ledger.execute.admission_error``); already committed is answered
   ALREADY_COMMITTED, already in the mempool ALREADY_PENDING;
3. ``check_signatures``: all of the batch in one call to the batch verifier (which the
   intake does not wait for: ``Admitter.prepare`` hands the batch to the verifier's
   threads and ``Admitter.finish`` collects the verdicts and runs the stages after);
4. ``check_permission``: a bank or the central bank submits only what it signed
   itself (the TLS certificate names the caller, the signature just checked proves the
   signer), except that the central bank may present a redemption its bank signed;
5. ``check_business_rules``: the batch executed against the head state on a scratch
   copy, so a transfer to an unknown or suspended bank, a redeem beyond the balance, a
   governance transaction from a bank is refused now, with the rule's own error, field
   and detail, rather than committed as REJECTED;
6. ``add_to_mempool``: room in the mempool, else RESOURCE_EXHAUSTED. The mempool keeps
   the key each signature was checked against, so the same transaction inside a block
   is not checked again (``services.validator.admitted``).

Transactions shared by another validator skip stages 4 and 5: the validator that took
them from their bank has already checked those. ``on_admitted`` hears of what entered the
mempool and whether a participant submitted it here: only then does this validator share
it with its peers. The validator that took a transaction from its bank sends it to every
peer itself (the validators are fully connected), so passing on what a peer shared would
only send each peer the same transaction again, two more times in four validators; at
saturation those copies filled the intake and pushed out first copies.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from typing import Protocol

from straits.ledger.v1 import transaction_pb2 as tx_pb
from straits.validator.v1 import validator_pb2 as validator_pb

from ledger.chain import Chain
from ledger.errors import (
    BadSignatureError,
    NotPermittedError,
    ReplayError,
    StraitsError,
    expected,
)
from ledger.execute import (
    AlreadyVerified,
    SignatureCheck,
    admission_error,
    key_lookup,
    rule_rejections,
)
from ledger.roles import Role
from ledger.state import State
from ledger.transaction import Transaction
from services.common.errors import OverloadedError, to_error_proto
from services.validator.mempool import Admission, Mempool

ACCEPTED = validator_pb.SUBMISSION_STATUS_ACCEPTED
PENDING = validator_pb.SUBMISSION_STATUS_ALREADY_PENDING
COMMITTED = validator_pb.SUBMISSION_STATUS_ALREADY_COMMITTED
REFUSED = validator_pb.SUBMISSION_STATUS_REFUSED
_TRUSTED = AlreadyVerified()


@dataclass(frozen=True)
class Candidate:
    """A transaction still in the running; ``index`` is its place in the submitted batch."""

    index: int
    transaction: Transaction


@dataclass(frozen=True)
class Refusal:
    """A transaction a stage refused; ``transaction_id`` is empty when it did not decode."""

    index: int
    transaction_id: bytes
    error: StraitsError


@dataclass(frozen=True)
class Known:
    """A transaction the ledger already has: ``status`` is ALREADY_COMMITTED or ALREADY_PENDING."""

    index: int
    transaction_id: bytes
    status: int


@dataclass(frozen=True)
class Sifted:
    """One stage's result: every candidate it was given is in exactly one of the three."""

    kept: tuple[Candidate, ...] = ()
    refused: tuple[Refusal, ...] = ()
    known: tuple[Known, ...] = ()


def _refuse(candidate: Candidate, error: StraitsError) -> Refusal:
    return Refusal(candidate.index, candidate.transaction.id, error)


# --- the stages ---------------------------------------------------------------------


def check_structure(chain_id: str, signed: Sequence[tx_pb.SignedTransaction]) -> Sifted:
    kept: list[Candidate] = []
    refused: list[Refusal] = []
    for index, message in enumerate(signed):
        try:
            kept.append(Candidate(index, Transaction.from_proto(chain_id, message)))
        except StraitsError as error:
            refused.append(Refusal(index, b"", error))
    return Sifted(tuple(kept), tuple(refused))


def check_chain(
    state: State, candidates: Sequence[Candidate], pending: Container[bytes]
) -> Sifted:
    """Against the head: the next block's height is the one a transaction must fit."""
    height = state.height + 1
    kept: list[Candidate] = []
    refused: list[Refusal] = []
    known: list[Known] = []
    for candidate in candidates:
        tx = candidate.transaction
        error = admission_error(state, tx, height)
        if isinstance(error, ReplayError):
            known.append(Known(candidate.index, tx.id, COMMITTED))
        elif error is not None:
            refused.append(_refuse(candidate, error))
        elif tx.id in pending:
            known.append(Known(candidate.index, tx.id, PENDING))
        else:
            kept.append(candidate)
    return Sifted(tuple(kept), tuple(refused), tuple(known))


class Verdicts(Protocol):
    def result(self) -> list[bool]: ...


class _Decided:
    """Verdicts already known: what a verifier without ``submit_transactions`` gave."""

    def __init__(self, verdicts: list[bool]) -> None:
        self._verdicts = verdicts

    def result(self) -> list[bool]:
        return self._verdicts


def submit_signatures(
    state: State, candidates: Sequence[Candidate], verify: SignatureCheck
) -> Verdicts:
    """Start the signature checks of ``candidates``; the verdicts, in order, come later."""
    transactions = [c.transaction for c in candidates]
    submit = getattr(verify, "submit_transactions", None)
    if submit is None:
        return _Decided(verify.verify_transactions(transactions, key_lookup(state)))
    return submit(transactions, key_lookup(state))  # type: ignore[no-any-return]


def sift_signatures(candidates: Sequence[Candidate], verdicts: Sequence[bool]) -> Sifted:
    kept: list[Candidate] = []
    refused: list[Refusal] = []
    for candidate, good in zip(candidates, verdicts, strict=True):
        if good:
            kept.append(candidate)
        else:
            signer = candidate.transaction.signer
            error = BadSignatureError(
                expected(f"a signature by {signer}'s key", "one that fails"), field="signature"
            )
            refused.append(_refuse(candidate, error))
    return Sifted(tuple(kept), tuple(refused))


def recheck_changed_keys(
    before: State, now: State, candidates: Sequence[Candidate], verify: SignatureCheck
) -> Sifted:
    """Check again, against the key in force ``now``, a signature that was checked
    against another key ``before`` (a key changed by a block between the two)."""
    if before.participants is now.participants:
        # Copied on write (ledger.working): blocks of payments alone leave the mapping,
        # and so every key, as it was.
        return Sifted(tuple(candidates))
    key_before, key_now = key_lookup(before), key_lookup(now)
    changed = [c for c in candidates
               if key_before(c.transaction.signer) != key_now(c.transaction.signer)]
    if not changed:
        return Sifted(tuple(candidates))
    again = sift_signatures(changed, verify.verify_transactions(
        [c.transaction for c in changed], key_now))
    refused = {r.index for r in again.refused}
    return Sifted(tuple(c for c in candidates if c.index not in refused), again.refused)


def check_signatures(
    state: State, candidates: Sequence[Candidate], verify: SignatureCheck
) -> Sifted:
    """The signature stage in one step: started, awaited and sifted."""
    return sift_signatures(candidates, submit_signatures(state, candidates, verify).result())


def check_permission(state: State, candidates: Sequence[Candidate], sender: str) -> Sifted:
    kept: list[Candidate] = []
    refused: list[Refusal] = []
    for candidate in candidates:
        tx = candidate.transaction
        if _may_submit(state, sender, tx):
            kept.append(candidate)
        else:
            error = NotPermittedError(
                expected(f"a transaction signed by the caller {sender!r}", tx.signer),
                field="signer",
            )
            refused.append(_refuse(candidate, error))
    return Sifted(tuple(kept), tuple(refused))


def check_business_rules(state: State, candidates: Sequence[Candidate]) -> Sifted:
    """Each block-sized chunk on its own scratch copy of the head state; signatures were
    checked by the stage before, so the scratch execution trusts them."""
    kept: list[Candidate] = []
    refused: list[Refusal] = []
    limit = state.parameters.max_block_transactions
    for start in range(0, len(candidates), limit):
        chunk = candidates[start : start + limit]
        rejections = rule_rejections(state, [c.transaction for c in chunk], verify=_TRUSTED)
        for candidate in chunk:
            error = rejections.get(candidate.transaction.id)
            if error is None:
                kept.append(candidate)
            else:
                refused.append(_refuse(candidate, error))
    return Sifted(tuple(kept), tuple(refused))


def add_to_mempool(mempool: Mempool, candidates: Sequence[Candidate], state: State) -> Sifted:
    """Kept: what the mempool added. A transaction another call added meanwhile is known.

    Each goes in with the key its signature was checked against (the signer's at the
    head), so a block that carries it later need not check it again.
    """
    kept: list[Candidate] = []
    refused: list[Refusal] = []
    known: list[Known] = []
    transactions = [c.transaction for c in candidates]
    key_of = key_lookup(state)
    admissions = mempool.add(transactions, [key_of(t.signer) for t in transactions])
    for candidate, admission in zip(candidates, admissions, strict=True):
        if admission is Admission.ADDED:
            kept.append(candidate)
        elif admission is Admission.DUPLICATE:
            known.append(Known(candidate.index, candidate.transaction.id, PENDING))
        else:
            error = OverloadedError(f"expected room in the mempool (capacity {mempool.capacity})")
            refused.append(_refuse(candidate, error))
    return Sifted(tuple(kept), tuple(refused), tuple(known))


def _may_submit(state: State, sender: str, tx: Transaction) -> bool:
    """A participant submits what it signed; the central bank may also present a
    redemption a bank signed (the bank's signature is its consent to destroy the tokens)."""
    if tx.signer == sender:
        return True
    participant = state.participants.get(sender)
    return participant is not None and participant.role == Role.CENTRAL_BANK and tx.kind == "redeem"


# --- the chain of stages ------------------------------------------------------------


@dataclass
class Prepared:
    """A batch part-way through admission: decoded, checked against the chain, its
    signatures handed to the verifier. ``Admitter.finish`` takes it from there."""

    size: int
    sender: str | None
    check_rules: bool
    answer: bool
    state: State
    results: dict[int, validator_pb.SubmissionResult]
    candidates: tuple[Candidate, ...]
    verdicts: Verdicts


class Admitter:
    def __init__(
        self,
        chain: Chain,
        mempool: Mempool,
        verify: SignatureCheck,
        on_admitted: Callable[[list[Transaction], bool], None],
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
        answer: bool = True,
    ) -> list[validator_pb.SubmissionResult]:
        """One result per item, in order. ``sender`` None: shared by another validator.

        ``answer`` False: nobody waits for the results (a shared batch), so none are built
        and the list is empty; building one message per item was a tenth of admission.
        """
        prepared = self.prepare(signed, sender=sender, check_rules=check_rules, answer=answer)
        return self.finish(prepared)

    def prepare(
        self,
        signed: Sequence[tx_pb.SignedTransaction],
        *,
        sender: str | None,
        check_rules: bool,
        answer: bool = True,
    ) -> Prepared:
        """The stages before the signatures, and the signatures started, not awaited."""
        state = self._chain.state
        sifted = check_structure(state.chain_id, signed)
        results = _answers(sifted) if answer else {}
        sifted = check_chain(state, sifted.kept, self._mempool)
        if answer:
            results.update(_answers(sifted))
        verdicts = submit_signatures(state, sifted.kept, self._verify)
        return Prepared(
            len(signed), sender, check_rules, answer, state, results, sifted.kept, verdicts
        )

    def finish(self, prepared: Prepared) -> list[validator_pb.SubmissionResult]:
        """The verdicts, the stages after them, and the results (see ``admit``)."""
        sender, answer, results = prepared.sender, prepared.answer, prepared.results
        sifted = sift_signatures(prepared.candidates, prepared.verdicts.result())
        if answer:
            results.update(_answers(sifted))
        before, state = prepared.state, self._chain.state
        stages: list[Callable[[Sequence[Candidate]], Sifted]] = []
        if state is not before:
            # A block committed since prepare (the intake prepares ahead): what it carried
            # is now committed, and the later stages run against the head the transactions
            # will be proposed on, under the keys in force there.
            stages.append(lambda c: check_chain(state, c, self._mempool))
            stages.append(lambda c: recheck_changed_keys(before, state, c, self._verify))
        if sender is not None:
            stages.append(lambda c: check_permission(state, c, sender))
        if prepared.check_rules:
            stages.append(lambda c: check_business_rules(state, c))
        stages.append(lambda c: add_to_mempool(self._mempool, c, state))
        for stage in stages:
            sifted = stage(sifted.kept)
            if answer:
                results.update(_answers(sifted))
        added = [c.transaction for c in sifted.kept]
        if added:
            self._on_admitted(added, sender is not None)
        if not answer:
            return []
        for candidate in sifted.kept:
            results[candidate.index] = validator_pb.SubmissionResult(
                transaction_id=candidate.transaction.id, status=ACCEPTED
            )
        return [results[index] for index in range(prepared.size)]


def _answers(sifted: Sifted) -> dict[int, validator_pb.SubmissionResult]:
    """What the sender hears about everything a stage stopped."""
    answers = {
        r.index: validator_pb.SubmissionResult(
            transaction_id=r.transaction_id, status=REFUSED, error=to_error_proto(r.error)
        )
        for r in sifted.refused
    }
    for k in sifted.known:
        answers[k.index] = validator_pb.SubmissionResult(
            transaction_id=k.transaction_id, status=k.status
        )
    return answers
