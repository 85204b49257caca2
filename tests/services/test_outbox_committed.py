"""A followed block marks this node's own outbox entries committed, with their receipt and
height, and touches nothing else: the central bank's node follows every payment of the
network, nearly all of them others'."""

from __future__ import annotations

from pathlib import Path

from straits.ledger.v1 import receipt_pb2 as receipt_pb
from straits.ledger.v1 import transaction_pb2 as tx_pb

from ledger.keys import PrivateKey
from ledger.transaction import Transaction, sign
from services.participant.outbox import CHUNK, COMMITTED, PENDING, NodeDb, Outbox

CHAIN = "straits-test"
KEY = PrivateKey.from_seed(bytes([7]) * 32)


def _transfer(nonce: int, signer: str = "bank-a") -> Transaction:
    body = tx_pb.TransactionBody(signer=signer, valid_until_height=50, nonce=nonce,
                                 transfer=tx_pb.Transfer(payee="bank-b", amount=nonce,
                                                        priority=tx_pb.PRIORITY_NORMAL))
    return sign(CHAIN, KEY, body)


def _receipt(tx: Transaction) -> receipt_pb.Receipt:
    return receipt_pb.Receipt(transaction_id=tx.id, outcome=receipt_pb.OUTCOME_SETTLED)


def test_only_own_entries_are_marked_across_more_ids_than_one_lookup_takes(
    tmp_path: Path,
) -> None:
    db = NodeDb(tmp_path / "node.db")
    outbox = Outbox(db, CHAIN)
    own = [_transfer(n) for n in range(1, 4)]
    still_pending = _transfer(99)
    with db.write() as conn:
        for i, tx in enumerate([*own, still_pending]):
            Outbox.add(conn, tx, f"request-{i}", b"")
    others = [_transfer(n, "bank-c") for n in range(1000, 1000 + 2 * CHUNK)]
    # Own entries at the start, in the middle and at the end of the block.
    carried = [own[0], *others[:CHUNK], own[1], *others[CHUNK:], own[2]]

    with db.write() as conn:
        marked = Outbox.committed(conn, 7, [(tx.id, _receipt(tx)) for tx in carried])

    assert marked == {tx.id for tx in own}
    for tx in own:
        entry = outbox.by_id(tx.id)
        assert entry is not None
        assert (entry.state, entry.height) == (COMMITTED, 7)
        assert entry.receipt == _receipt(tx)
    entry = outbox.by_id(still_pending.id)
    assert entry is not None and (entry.state, entry.height, entry.receipt) == (PENDING, 0, None)
    assert db.query("SELECT COUNT(*) FROM outbox") == [(4,)]


def test_a_block_of_only_others_transactions_writes_nothing(tmp_path: Path) -> None:
    db = NodeDb(tmp_path / "node.db")
    Outbox(db, CHAIN)
    others = [_transfer(n, "bank-c") for n in range(1, 6)]
    with db.write() as conn:
        before = conn.total_changes
        assert Outbox.committed(conn, 3, [(tx.id, _receipt(tx)) for tx in others]) == set()
        assert conn.total_changes == before
    assert db.query("SELECT COUNT(*) FROM outbox") == [(0,)]
