"""Who takes part, and as what: the one vocabulary of roles.

Genesis names each participant's role, a TLS certificate names its holder's role
(``straits://<role>/<participant-id>``), and a node's configuration names the role it
runs as; all three say it with ``Role``. A ``StrEnum``, so a role is written, hashed
and stored as its plain value (``"central_bank"``) and the ledger's formats do not
change with it.

Not every role fits everywhere: only ``PARTICIPANT_ROLES`` hold an account on the
ledger (genesis), only ``NODE_ROLES`` run a node of their own (configuration), and
``CLIENT`` is a certificate's role alone: someone using a participant's node on its
behalf (a bank's payment system, an operator's CLI).
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VALIDATOR = "validator"
    CENTRAL_BANK = "central_bank"
    BANK = "bank"
    REGULATOR = "regulator"
    CLIENT = "client"


# Ordered tuples, so the error that lists them reads the same every time.
PARTICIPANT_ROLES = (Role.CENTRAL_BANK, Role.BANK, Role.REGULATOR)
NODE_ROLES = (Role.VALIDATOR, Role.CENTRAL_BANK, Role.BANK)
