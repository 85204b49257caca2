"""Checking a store's head before a node trusts it: what a damaged file would get wrong.

``load_state`` already refuses a state whose root is not the head block's; this adds
what it takes on trust: the head block's stored hash against its header bytes, its
height, its link to its parent, its transactions and receipts roots against the rows
stored for it, and a quorum of valid commit seals from the validator set of its
height. Each failure is a ``StoreError`` that says what did not hold.
"""

from __future__ import annotations

from ledger import codec
from ledger.block import verify_seals
from ledger.errors import QuorumError, StoreError, expected
from ledger.receipts import receipts_root
from ledger.state import State
from ledger.store.base import Store


def check_head(store: Store, state: State) -> None:
    """Raise ``StoreError`` unless the store's head block agrees with itself and ``state``."""
    height = store.head_height()
    if state.height != height:
        raise StoreError(expected(f"a stored state at the head height {height}", state.height))
    if height == 0:
        return
    block = store.block(height)
    if block is None:
        raise StoreError(f"the head block {height} is missing")
    where = f"head block {height}"
    if block.header.height != height:
        raise StoreError(expected(f"{where} to say height {height}", block.header.height))
    if codec.block_hash(state.chain_id, block.header_bytes) != block.hash:
        raise StoreError(f"{where}: its header bytes do not hash to its stored hash")
    if block.hash != state.head_hash:
        raise StoreError(f"{where}: its hash is not the head hash of the stored state")
    parent = store.block(height - 1) if height > 1 else None
    if parent is not None and block.header.parent_hash != parent.hash:
        raise StoreError(f"{where}: its parent hash is not block {height - 1}'s hash")
    if codec.merkle_root([t.id for t in block.transactions]) != block.header.transactions_root:
        raise StoreError(f"{where}: its stored transactions do not make its transactions root")
    sealed = receipts_root(block.transactions, store.receipts(height), store.settlements(height))
    if sealed != block.header.receipts_root:
        raise StoreError(f"{where}: its stored receipts do not make its receipts root")
    try:
        verify_seals(block, state.validators_for(height))
    except QuorumError as error:
        raise StoreError(f"{where}: {error}") from error
