"""Several sources side by side: the first height where they differ, and how.

Validators of one network must hold the same blocks: the same header bytes, the same
transactions in the same order, the same receipts and queue settlements. Their seals may
differ (each keeps the quorum it collected), so seals are not compared. A source that is
merely behind is reported as such, not as a divergence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from straits.ledger.v1 import block_pb2 as block_pb

from clients.audit.records import BlockRecord
from clients.audit.sources import Source
from ledger import codec
from ledger.errors import StraitsError

PAGE = 64


@dataclass(frozen=True)
class Difference:
    height: int
    what: str
    sources: tuple[tuple[str, str], ...]  # (source name, what it holds), in source order
    diverged: bool = True  # False when a source is only behind the others


def _header_fields(records: Sequence[BlockRecord]) -> list[str]:
    decoded = []
    for r in records:
        try:
            decoded.append(codec.decode(block_pb.BlockHeader, r.header))
        except StraitsError:
            return ["bytes"]
    names = [f.name for f in block_pb.BlockHeader.DESCRIPTOR.fields]
    return [n for n in names if len({getattr(h, n) for h in decoded}) > 1] or ["bytes"]


def _first_index(lists: Sequence[Sequence[object]]) -> int:
    for index in range(max(len(x) for x in lists)):
        if len({x[index] if index < len(x) else None for x in lists}) > 1:  # type: ignore[misc]
            return index
    return 0


def compare_block(chain_id: str, names: Sequence[str],
                  records: Sequence[BlockRecord]) -> list[Difference]:
    """How the records of one height differ between sources; empty when they agree."""
    height = records[0].height
    found = []
    hashes = [codec.block_hash(chain_id, r.header) for r in records]
    if len(set(hashes)) > 1:
        fields = ", ".join(_header_fields(records))
        found.append(Difference(height, f"header ({fields})", tuple(
            (n, f"hash {h.hex()[:16]}") for n, h in zip(names, hashes, strict=True))))
    ids = [[codec.transaction_id(chain_id, t.body) for t in r.transactions] for r in records]
    if len({tuple(x) for x in ids}) > 1:
        index = _first_index(ids)
        found.append(Difference(height, f"transactions (from index {index})", tuple(
            (n, f"{len(x)} transactions, #{index} "
                f"{x[index].hex()[:16] if index < len(x) else 'none'}")
            for n, x in zip(names, ids, strict=True))))
    receipts = [list(r.receipts) for r in records]
    if len({tuple(x) for x in receipts}) > 1:
        index = _first_index(receipts)
        found.append(Difference(height, f"receipts (from transaction {index})", tuple(
            (n, f"outcome {x[index][1]} {x[index][2]}".rstrip() if index < len(x) else "none")
            for n, x in zip(names, receipts, strict=True))))
    settled = [list(r.settlements) for r in records]
    if len({tuple(x) for x in settled}) > 1:
        found.append(Difference(height, "queue settlements", tuple(
            (n, f"{len(x)} settlements") for n, x in zip(names, settled, strict=True))))
    return found


def compare(chain_id: str, sources: Sequence[Source]) -> list[Difference]:
    """Walks all sources from block 1 to the first height where they differ."""
    names = [s.name for s in sources]
    heads = [s.head_height() for s in sources]
    common = min(heads)
    height = 1
    while height <= common:
        pages = [s.blocks(height, min(PAGE, common - height + 1)) for s in sources]
        count = min(len(p) for p in pages)
        if count == 0:
            break
        for offset in range(count):
            records = [p[offset] for p in pages]
            held = {r.height for r in records}
            if len(held) > 1:
                return [Difference(height + offset, "which block is held here", tuple(
                    (n, f"block {r.height}") for n, r in zip(names, records, strict=True)))]
            found = compare_block(chain_id, names, records)
            if found:
                return found
        height += count
    if len(set(heads)) > 1:
        return [Difference(common + 1, "head (behind, not diverged)", tuple(
            (n, f"head {h}") for n, h in zip(names, heads, strict=True)), diverged=False)]
    return []
