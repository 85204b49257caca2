"""Storage of committed blocks and state: the interface and its two implementations."""

from ledger.store.base import Store, TransactionRecord
from ledger.store.memory import MemoryStore
from ledger.store.sqlite import SqliteStore

__all__ = ["MemoryStore", "SqliteStore", "Store", "TransactionRecord"]
