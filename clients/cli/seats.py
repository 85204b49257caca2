"""Which seats may use which command, checked before any call is made.

A seat is what ``--as`` names: a bank, the central bank or the regulator (from the
network directory's ``network.json``). A command used from a seat that may not use
it fails with PERMISSION_DENIED and a sentence naming the seats that may, the same
code the nodes answer with, rather than reaching a node that does not serve it. With
explicit ``--address``/``--cert`` the seat is unknown here and the node decides.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import grpc

from clients.sdk import ApiError, NetworkIndex
from clients.sdk.network import BANK, CENTRAL_BANK, REGULATOR, VALIDATOR

SEAT_WORDS = {
    BANK: "a bank",
    CENTRAL_BANK: "the central bank",
    REGULATOR: "the regulator",
    VALIDATOR: "a validator's operator",
}
BANKS = (BANK, REGULATOR)  # a bank's reads: its own, or any bank's for the regulator
BANK_ONLY = (BANK,)
CENTRAL_BANK_ONLY = (CENTRAL_BANK,)
OVERSIGHT = (CENTRAL_BANK, REGULATOR)
EVERYONE = (BANK, CENTRAL_BANK, REGULATOR, VALIDATOR)  # chain reads, scoped by the validator

Run = Callable[[argparse.Namespace], int]


def _words(seats: Sequence[str]) -> str:
    words = [SEAT_WORDS[s] for s in seats]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def refusal(command: str, seats: Sequence[str], participant: str, seat: str) -> ApiError:
    writes = REGULATOR not in seats and seat == REGULATOR
    why = "; the regulator only reads" if writes else ""
    return ApiError(
        grpc.StatusCode.PERMISSION_DENIED,
        "access_denied",
        "as",
        f"`straits {command}` may be used by {_words(seats)} ({', '.join(seats)}); "
        f"{participant!r} is {SEAT_WORDS[seat]}{why}",
    )


def seat_of(args: argparse.Namespace) -> str | None:
    """The seat ``--as`` takes, or None when the target is given explicitly."""
    if args.address or args.network is None or not args.participant:
        return None
    return NetworkIndex.load(args.network).role_of(args.participant)


def checked(command: str, seats: Sequence[str], run: Run) -> Run:
    def run_checked(args: argparse.Namespace) -> int:
        seat = seat_of(args)
        if seat is not None and seat not in seats:
            raise refusal(command, seats, args.participant, seat)
        return run(args)

    return run_checked
