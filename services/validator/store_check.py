"""Opening a validator's store only if it passes its integrity checks.

A validator serves its store to banks and peers and builds on it, so before it starts
it checks the file: SQLite's ``quick_check``, the stored state against the head block's
state root (``Store.load_state``), and the head block against itself and that state
(``ledger.store.integrity``: hash, height, parent link, transactions and receipts
roots, commit seals). A store that fails does not start the validator: the error says
what failed and how to rebuild the store from the other validators.
"""

from __future__ import annotations

from pathlib import Path

from ledger.chain import Chain
from ledger.errors import StoreError
from ledger.execute import SignatureCheck
from ledger.queue import Stopwatch
from ledger.state import State
from ledger.store.integrity import check_head
from ledger.store.sqlite import SqliteStore


def rebuild_advice(path: Path) -> str:
    return (
        f"To rebuild it from the other validators: stop this validator, move {path.name} and"
        f" its {path.name}-wal and {path.name}-shm files out of {path.parent} (keep them to"
        " inspect), and start the validator again: it syncs every block from its peers,"
        " checking each, and signs nothing until it has passed the network's head."
    )


def open_checked(
    validator: str, path: Path, genesis_state: State, verify: SignatureCheck,
    stopwatch: Stopwatch | None = None,
) -> tuple[SqliteStore, Chain]:
    """The store at ``path`` and the chain on it, or ``StoreError`` saying what failed."""
    store: SqliteStore | None = None
    try:
        store = SqliteStore(path)
        damage = store.damage()
        if damage:
            raise StoreError("SQLite quick_check found: " + "; ".join(damage[:5]))
        chain = Chain(store, genesis_state, verify, stopwatch)
        check_head(store, chain.state)
    except Exception as error:  # whatever a damaged file makes the reads raise
        if store is not None:
            store.close()
        what = error.detail if isinstance(error, StoreError) else f"{type(error).__name__}: {error}"
        raise StoreError(
            f"{validator} refuses to start: its ledger store {path} failed its integrity"
            f" check ({what}). {rebuild_advice(path)}"
        ) from error
    return store, chain
