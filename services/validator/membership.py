"""Who is a member now: a caller's certificate checked against the ledger's current state.

A certificate from the network CA proves who its holder was made to be, not that the
network still counts them in. A validator therefore also asks its own state at the
head, on every call: a validator must be in the validator set (or in a change already
decided, so a validator being added can sync first); a bank, the central bank or the
regulator must be a participant of that role. A validator removed by governance loses
consensus and sync access with the block that removes it, and a suspended bank may
still read but not submit.
"""

from __future__ import annotations

from collections.abc import Callable

from ledger.state import State
from services.common.auth import VALIDATOR, Caller
from services.common.errors import AccessDeniedError

SUBMIT = "/straits.validator.v1.ValidatorService/SubmitTransactions"


def membership_check(state_now: Callable[[], State]) -> Callable[[Caller, str], None]:
    """The ``Membership`` check of a validator whose head state ``state_now`` returns."""

    def check(caller: Caller, method: str) -> None:
        state = state_now()
        who = caller.participant_id
        if caller.role is VALIDATOR:
            if who in state.validators or any(who in later for _, later in
                                              state.pending_validators):
                return
            raise AccessDeniedError(
                f"{who!r} is not in the validator set at height {state.height}")
        participant = state.participants.get(who)
        if participant is None:
            raise AccessDeniedError(
                f"{who!r} is not a participant of this network at height {state.height}")
        if participant.role != caller.role:
            raise AccessDeniedError(
                f"{who!r} is a {participant.role} in the ledger; the certificate says "
                f"{caller.role}")
        if participant.suspended and method == SUBMIT:
            raise AccessDeniedError(f"{who!r} is suspended: it may read but not submit")

    return check
