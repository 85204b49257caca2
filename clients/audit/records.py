"""A block as a source holds it, before anything is decoded or believed.

A validator over gRPC and a copy of a validator's SQLite file hand over the same
things: header bytes, signed transactions, seals, receipts and queue settlements.
Nothing here is checked: a damaged record must reach the checks whole, so that the
audit can say what is wrong with it instead of failing to read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from google.protobuf.message import DecodeError
from straits.ledger.v1 import block_pb2 as block_pb
from straits.validator.v1 import validator_pb2 as validator_pb

from ledger.block import Seal
from ledger.store.records import StoredBlock


class Signed(Protocol):
    """A transaction as signed: a ``SignedTransaction`` or a store's row."""

    @property
    def body(self) -> bytes: ...

    @property
    def signature(self) -> bytes: ...


HeldReceipt = tuple[bytes, int, str, str]  # transaction id, outcome, reason, detail
HeldSettlement = tuple[bytes, int, bool, str]  # transfer id, outcome, by offsetting, reason


@dataclass(frozen=True)
class BlockRecord:
    height: int  # where the source keeps it
    header: bytes
    transactions: tuple[Signed, ...]
    receipts: tuple[HeldReceipt, ...]
    settlements: tuple[HeldSettlement, ...]
    # None when the source's seal bytes do not decode.
    seals: tuple[Seal, ...] | None
    # The hash a store keeps beside the header; None where the source sends none.
    stored_hash: bytes | None = None
    # Ids a store keeps beside each transaction; empty where the source sends none.
    stored_ids: tuple[bytes, ...] = ()

    @classmethod
    def from_stored(cls, stored: StoredBlock) -> BlockRecord:
        seals: tuple[Seal, ...] | None
        try:
            message = block_pb.Block.FromString(stored.seals)
            seals = tuple(Seal(s.validator, s.signature) for s in message.seals)
        except DecodeError:
            seals = None
        rows = stored.transactions
        return cls(
            height=stored.height,
            header=stored.header,
            transactions=rows,
            receipts=tuple((t.id, t.outcome, t.reason or "", t.detail or "") for t in rows),
            settlements=stored.settlements,
            seals=seals,
            stored_hash=stored.hash,
            stored_ids=tuple(t.id for t in rows),
        )

    @classmethod
    def from_view(cls, height: int, view: validator_pb.BlockView) -> BlockRecord:
        block = view.block
        return cls(
            height=height,
            header=block.header,
            transactions=tuple(block.transactions),
            receipts=tuple(
                (r.transaction_id, r.outcome, r.reason, r.detail) for r in view.receipts
            ),
            settlements=tuple((s.transfer_id, s.outcome, s.by_offsetting, s.reason)
                              for s in view.queue_settlements),
            seals=tuple(Seal(s.validator, s.signature) for s in block.seals),
        )
