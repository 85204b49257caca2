"""The validator's chain lives in the pure core, ``ledger.chain``; this name still resolves."""

from ledger.chain import Chain

__all__ = ["Chain"]
