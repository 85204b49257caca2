"""Each signature checked once: at admission, or in the block, never both.

A validator checks the signature of every transaction it admits (its bank's
submissions and the batches its peers share). When a proposal carries those
transactions back, ``AdmittedFirst`` answers for the ones the mempool holds as
checked (the very values admission produced, against the same key) and hands only
the rest (a transaction this validator never admitted, or one whose bytes arrived
again in a different object) to the batch verifier. Nothing is trusted that this
process did not check itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ledger.execute import SignatureCheck
from ledger.keys import PublicKey
from ledger.transaction import Transaction
from services.validator.mempool import Mempool


class AdmittedFirst:
    """A ``SignatureCheck`` for the chain: the mempool's checked transactions, then the verifier."""

    def __init__(self, mempool: Mempool, verifier: SignatureCheck) -> None:
        self._mempool = mempool
        self._verifier = verifier
        self.reused = 0  # verdicts answered from admission, for metrics and tests
        self.verified = 0  # handed to the verifier

    def verify_transactions(
        self, transactions: Sequence[Transaction], key_of: Callable[[str], PublicKey | None]
    ) -> list[bool]:
        checked = self._mempool.checked
        verdicts: list[bool] = []
        unknown: list[int] = []
        for index, tx in enumerate(transactions):
            if checked(tx, key_of(tx.signer)):
                verdicts.append(True)
            else:
                verdicts.append(False)
                unknown.append(index)
        self.reused += len(transactions) - len(unknown)
        if unknown:
            self.verified += len(unknown)
            fresh = self._verifier.verify_transactions([transactions[i] for i in unknown], key_of)
            for index, good in zip(unknown, fresh, strict=True):
                verdicts[index] = good
        return verdicts
