"""Transactions as values: decode and check structure, build and sign.

``Transaction.decode`` is the first step of admission: it parses the wire form,
checks the structure (a kind is set, amounts are int64-positive where required,
ids are well formed) and computes the id, without touching any state. Signature,
permission and business checks come later (``ledger.verifier``, ``ledger.state``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from straits.ledger.v1 import transaction_pb2 as tx_pb

from ledger import codec
from ledger.errors import BadKeyError, DecodeError, MalformedTransactionError, expected
from ledger.keys import PrivateKey, PublicKey

INT64_MAX = 2**63 - 1
MAX_ID_LENGTH = 64
MAX_TEXT_LENGTH = 256
PRIORITIES = (tx_pb.PRIORITY_URGENT, tx_pb.PRIORITY_NORMAL)

QUEUE_OPERATIONS = ("cancel", "hold", "release", "reprioritise")
GOVERNANCE = (
    "issue",
    "admit_bank",
    "suspend_bank",
    "unsuspend_bank",
    "change_validators",
    "close_day",
)


@dataclass(frozen=True, slots=True)
class Transaction:
    """A decoded, structurally valid transaction. ``signed`` is what the signature covers."""

    id: bytes
    body: tx_pb.TransactionBody
    body_bytes: bytes
    signature: bytes
    chain_id: str
    # Which of the body's kinds is set, read once: the rules, the receipts and the
    # audit each ask, and asking the message is a call every time. Filled from the
    # body when not given.
    kind: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", self.body.WhichOneof("kind") or "")

    @property
    def signer(self) -> str:
        return self.body.signer

    @property
    def signed(self) -> bytes:
        return codec.signing_bytes(self.chain_id, codec.TX, self.body_bytes)

    def to_proto(self) -> tx_pb.SignedTransaction:
        return tx_pb.SignedTransaction(body=self.body_bytes, signature=self.signature)

    def encode(self) -> bytes:
        return self.to_proto().SerializeToString()

    @classmethod
    def from_proto(cls, chain_id: str, message: tx_pb.SignedTransaction) -> Transaction:
        body_bytes = message.body
        body = codec.decode(tx_pb.TransactionBody, body_bytes)
        kind = check_structure(body)
        return _decoded(
            codec.transaction_id(chain_id, body_bytes),
            body,
            body_bytes,
            message.signature,
            chain_id,
            kind,
        )

    @classmethod
    def decode(cls, chain_id: str, data: bytes) -> Transaction:
        return cls.from_proto(chain_id, codec.decode(tx_pb.SignedTransaction, data))


# Every transaction a validator admits or meets in a block is decoded once: the frozen
# dataclass's __init__ (a call per field through object.__setattr__, then
# __post_init__) was a third of ``from_proto``. Its slots are filled directly instead,
# with every field given, so the value is the one __init__ would build.
_FIELDS = ("id", "body", "body_bytes", "signature", "chain_id", "kind")
_SETTERS = tuple(getattr(Transaction, name).__set__ for name in _FIELDS)
if tuple(f.name for f in fields(Transaction)) != _FIELDS:
    raise RuntimeError(f"Transaction's fields are not {_FIELDS}: update _decoded")


def _decoded(
    tx_id: bytes,
    body: tx_pb.TransactionBody,
    body_bytes: bytes,
    signature: bytes,
    chain_id: str,
    kind: str,
) -> Transaction:
    tx = object.__new__(Transaction)
    set_id, set_body, set_body_bytes, set_signature, set_chain_id, set_kind = _SETTERS
    set_id(tx, tx_id)
    set_body(tx, body)
    set_body_bytes(tx, body_bytes)
    set_signature(tx, signature)
    set_chain_id(tx, chain_id)
    set_kind(tx, kind)
    return tx


def sign(chain_id: str, key: PrivateKey, body: tx_pb.TransactionBody) -> Transaction:
    """Serialise ``body`` once, sign exactly those bytes, and return the transaction."""
    kind = check_structure(body)
    body_bytes = codec.encode(body)
    # Keep a private copy: the caller may go on mutating its message, and the
    # transaction's body must stay what body_bytes (and so the id) say it is.
    body = codec.decode(tx_pb.TransactionBody, body_bytes)
    signature = key.sign(codec.signing_bytes(chain_id, codec.TX, body_bytes))
    return Transaction(
        id=codec.transaction_id(chain_id, body_bytes),
        body=body,
        body_bytes=body_bytes,
        signature=signature,
        chain_id=chain_id,
        kind=kind,
    )


def _check_id(value: str, field: str) -> None:
    if not value or len(value) > MAX_ID_LENGTH or not value.isprintable():
        raise MalformedTransactionError(
            expected(f"a printable id of 1..{MAX_ID_LENGTH} characters", value), field=field
        )


def _check_amount(value: int, field: str) -> None:
    if not 0 < value <= INT64_MAX:
        raise MalformedTransactionError(
            expected(f"an amount in 1..{INT64_MAX}", value), field=field
        )


def _check_text(value: str, field: str) -> None:
    if len(value) > MAX_TEXT_LENGTH:
        raise MalformedTransactionError(
            expected(f"at most {MAX_TEXT_LENGTH} characters", len(value)), field=field
        )


def _check_priority(value: int, field: str) -> None:
    if value not in PRIORITIES:
        raise MalformedTransactionError(
            expected("PRIORITY_URGENT or PRIORITY_NORMAL", value), field=field
        )


def _check_transfer_id(value: bytes, field: str) -> None:
    if len(value) != codec.HASH_SIZE:
        raise MalformedTransactionError(
            expected(f"a {codec.HASH_SIZE}-byte transaction id", len(value)), field=field
        )


def _check_key(holder: tx_pb.AdmitBank | tx_pb.Validator, field: str) -> None:
    # A key that can never load would otherwise be admitted and fail only when used.
    if not holder.HasField("key"):
        raise MalformedTransactionError("expected a public key, got none", field=field)
    try:
        PublicKey.from_proto(holder.key)
    except BadKeyError as exc:
        raise MalformedTransactionError(exc.detail, field=field) from exc


def _check_set_limit(limit: tx_pb.SetLimit) -> None:
    if limit.counterparty:
        _check_id(limit.counterparty, "set_limit.counterparty")
    if limit.remove and limit.amount != 0:
        raise MalformedTransactionError(
            expected("amount 0 with remove", limit.amount), field="set_limit.amount"
        )
    if limit.amount < 0:
        raise MalformedTransactionError(
            expected(f"a limit in 0..{INT64_MAX}", limit.amount), field="set_limit.amount"
        )


def check_structure(body: tx_pb.TransactionBody) -> str:
    """Checks that need no state, and the kind that is set. Amount bounds live here so no
    state is ever touched by them.

    ``InvalidAmountError`` is a business rejection in the state machine; here an amount
    outside 1..int64 is a malformed transaction because it can never be valid.
    """
    _check_id(body.signer, "signer")
    if body.valid_until_height == 0:
        raise MalformedTransactionError(
            expected("valid_until_height > 0", 0), field="valid_until_height"
        )
    kind = body.WhichOneof("kind")
    if kind is None:
        raise MalformedTransactionError(
            "expected one transaction kind to be set, got none", field="kind"
        )
    if kind == "issue":
        _check_id(body.issue.bank, "issue.bank")
        _check_amount(body.issue.amount, "issue.amount")
        _check_text(body.issue.collateral_ref, "issue.collateral_ref")
    elif kind == "redeem":
        _check_amount(body.redeem.amount, "redeem.amount")
        _check_text(body.redeem.collateral_ref, "redeem.collateral_ref")
    elif kind == "transfer":
        transfer = body.transfer
        _check_id(transfer.payee, "transfer.payee")
        _check_amount(transfer.amount, "transfer.amount")
        _check_priority(transfer.priority, "transfer.priority")
        _check_text(transfer.reference, "transfer.reference")
    elif kind in QUEUE_OPERATIONS:
        op = getattr(body, kind)
        _check_transfer_id(op.transfer_id, f"{kind}.transfer_id")
        if kind == "reprioritise":
            _check_priority(op.priority, "reprioritise.priority")
    elif kind == "admit_bank":
        _check_id(body.admit_bank.bank, "admit_bank.bank")
        _check_text(body.admit_bank.name, "admit_bank.name")
        _check_key(body.admit_bank, "admit_bank.key")
    elif kind in ("suspend_bank", "unsuspend_bank"):
        _check_id(getattr(body, kind).bank, f"{kind}.bank")
    elif kind == "set_limit":
        _check_set_limit(body.set_limit)
    elif kind == "close_day":
        if body.close_day.day == 0:
            raise MalformedTransactionError(expected("day > 0", 0), field="close_day.day")
    elif kind == "change_validators":
        change = body.change_validators
        if not change.validators:
            raise MalformedTransactionError(
                "expected at least one validator, got none", field="change_validators.validators"
            )
        seen: set[str] = set()
        for i, v in enumerate(change.validators):
            _check_id(v.id, f"change_validators.validators[{i}].id")
            _check_key(v, f"change_validators.validators[{i}].key")
            if v.id in seen:
                raise MalformedTransactionError(
                    expected("distinct validator ids", v.id),
                    field=f"change_validators.validators[{i}].id",
                )
            seen.add(v.id)
        if change.effective_height == 0:
            raise MalformedTransactionError(
                expected("effective_height > 0", 0), field="change_validators.effective_height"
            )
    return kind


__all__ = ["DecodeError", "Transaction", "check_structure", "sign"]
