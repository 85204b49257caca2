"""The one error hierarchy of Straits.

Every error the core raises derives from ``StraitsError``, carries a stable
machine-readable ``code`` and says what was expected and what came. Services map
the classes below to gRPC status codes in one table (``services.common.errors``).

Two families matter to block building:

* ``InadmissibleError``: the transaction may never appear in a block (bad bytes,
  bad signature, unknown signer, replay, expired). A block that carries one is invalid.
* ``RejectedError``: a business rule refused it given the current state (overdraft of
  a redeem, suspended payee, wrong role...). It may sit in a block; its receipt says
  REJECTED and the state is left unchanged.
"""

from __future__ import annotations


class StraitsError(Exception):
    """Base of every Straits error. ``code`` is stable; ``detail`` is for humans."""

    code = "straits_error"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field

    def __str__(self) -> str:
        where = f" [{self.field}]" if self.field else ""
        return f"{self.code}{where}: {self.detail}"


MAX_ECHO = 200


def expected(what: str, came: object) -> str:
    """Uniform wording for 'expected X, got Y' details.

    What came is clipped to ``MAX_ECHO`` characters: it may be anything a caller sent.
    """
    shown = repr(came)
    if len(shown) > MAX_ECHO:
        shown = f"{shown[:MAX_ECHO]}... ({len(shown)} characters)"
    return f"expected {what}, got {shown}"


# --- decoding and configuration -------------------------------------------------------


class DecodeError(StraitsError):
    """Bytes that do not decode to the message they claim to be."""

    code = "malformed"


class GenesisError(StraitsError):
    """A genesis file that is missing a field or holds a bad value; ``field`` names it."""

    code = "bad_genesis"


class BadKeyError(StraitsError):
    """A key that cannot be loaded or is of an unsupported type."""

    code = "bad_key"


# --- admission: the transaction may never be in a block -------------------------------


class InadmissibleError(StraitsError):
    code = "inadmissible"


class WrongChainError(InadmissibleError):
    code = "wrong_chain"


class BadSignatureError(InadmissibleError):
    code = "bad_signature"


class UnknownSignerError(InadmissibleError):
    code = "unknown_signer"


class ReplayError(InadmissibleError):
    code = "replay"


class ExpiredError(InadmissibleError):
    code = "expired"


class MalformedTransactionError(InadmissibleError):
    """Structurally invalid: no kind set, empty ids, out-of-range enum and the like."""

    code = "malformed_transaction"


# --- business rules: refused with a receipt, state unchanged --------------------------


class RejectedError(StraitsError):
    code = "rejected"


class NotPermittedError(RejectedError):
    """The signer's role or ownership does not allow this transaction."""

    code = "not_permitted"


class InvalidAmountError(RejectedError):
    code = "invalid_amount"


class InsufficientFundsError(RejectedError):
    code = "insufficient_funds"


class UnknownAccountError(RejectedError):
    code = "unknown_account"


class SuspendedError(RejectedError):
    code = "suspended"


class AlreadyExistsError(RejectedError):
    code = "already_exists"


class NotQueuedError(RejectedError):
    """A queue operation named a transfer that is not (or no longer) in the queue."""

    code = "not_queued"


class AmountOverflowError(RejectedError):
    """A balance or the money supply would leave the int64 range."""

    code = "overflow"


class InvalidGovernanceError(RejectedError):
    code = "invalid_governance"


# --- blocks and storage ---------------------------------------------------------------


class InvalidBlockError(StraitsError):
    """A block that must not be committed: bad header, bad transaction, bad root."""

    code = "invalid_block"


class QuorumError(InvalidBlockError):
    """Too few valid commit seals: says how many were valid and how many were needed."""

    code = "no_quorum"

    def __init__(self, *, valid: int, needed: int, detail: str = "") -> None:
        super().__init__(
            f"{valid} valid commit seals, {needed} needed" + (f": {detail}" if detail else "")
        )
        self.valid = valid
        self.needed = needed


class StoreError(StraitsError):
    code = "store"


class SchemaVersionError(StoreError):
    code = "schema_version"


# --- consensus ------------------------------------------------------------------------


class ConsensusError(StraitsError):
    code = "consensus"


class InvalidMessageError(ConsensusError):
    """A consensus message refused by a rule; ``reason`` names it for the metrics."""

    code = "invalid_consensus_message"

    def __init__(self, detail: str, *, reason: str, field: str | None = None) -> None:
        super().__init__(detail, field=field)
        self.reason = reason


class DoubleSignError(ConsensusError):
    """The signer was asked to sign something other than what it already signed at a step."""

    code = "double_sign"
