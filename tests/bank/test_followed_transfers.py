"""A bank node's book from the transfers a followed block carried: the payments this node
sent take their outcome, the ones paid to it appear, others' payments stay out, and each
change is one event, in the block's order, showing the payment as it then stands."""

from __future__ import annotations

from pathlib import Path

from straits.bank.v1 import bank_pb2 as pb
from straits.ledger.v1 import receipt_pb2 as receipt_pb
from straits.ledger.v1 import transaction_pb2 as tx_pb

from services.participant.bank.payments import SEQ_SPAN, HistoryFilter
from tests.bank.test_central_bank_entries import (
    ALL_KINDS,
    APPLIED,
    BANK,
    GENESIS_MS,
    OTHER,
    REJECTED,
    SETTLED,
    _signed,
    block,
    follow,
    issue,
    open_book,
    transfer,
)

QUEUED = receipt_pb.OUTCOME_QUEUED
THIRD = "bank-c"


def test_a_blocks_transfers_update_sent_payments_and_add_received_ones(tmp_path: Path):
    db, book = open_book(tmp_path / "node.db")
    sent = transfer(BANK, OTHER, 500)
    queued = transfer(BANK, OTHER, 900)
    refused = transfer(BANK, OTHER, 10**12)
    received = transfer(OTHER, BANK, 70)
    others = transfer(OTHER, THIRD, 5)
    with db.write() as conn:
        for tx, request in ((sent, "req-1"), (queued, "req-2"), (refused, "req-3")):
            book.add_outgoing(conn, tx, request)
    created = {p.transfer_id: p.created_time_ms for p in book.payments([sent.id]).values()}

    carried = (
        (sent, SETTLED), (others, SETTLED), (received, SETTLED),
        (issue(BANK, 1_000, "collateral-1"), APPLIED),  # between transfers: written in place
        (queued, QUEUED), (refused, REJECTED),
    )
    follow(db, book, [block(3, *carried)])

    rows = book.payments([sent.id, queued.id, refused.id, received.id, others.id])
    assert others.id not in rows, "a payment between two other banks is not this bank's"
    assert rows[sent.id].status == pb.PAYMENT_STATUS_SETTLED
    assert rows[sent.id].request_id == "req-1"
    assert rows[sent.id].direction == pb.DIRECTION_OUTGOING
    assert rows[sent.id].created_time_ms == created[sent.id], "sent: the node's own time"
    assert (rows[sent.id].committed_height, rows[sent.id].settled_height) == (3, 3)
    assert rows[sent.id].settled_time_ms == GENESIS_MS + 3000
    assert rows[queued.id].status == pb.PAYMENT_STATUS_QUEUED
    assert rows[queued.id].settled_height == 0 and rows[queued.id].committed_height == 3
    assert rows[refused.id].status == pb.PAYMENT_STATUS_REJECTED
    incoming = rows[received.id]
    assert incoming.direction == pb.DIRECTION_INCOMING
    assert (incoming.payer, incoming.payee, incoming.amount) == (OTHER, BANK, 70)
    assert incoming.created_time_ms == GENESIS_MS + 3000, "received: the block's time"
    assert incoming.status == pb.PAYMENT_STATUS_SETTLED and incoming.request_id == ""
    queue = book.history(HistoryFilter(statuses=(pb.PAYMENT_STATUS_QUEUED,)), 10, 0)[0]
    assert [p.transfer_id for p in queue] == [queued.id]

    events = book.events_after(0, pb.DIRECTION_UNSPECIFIED)
    assert [p.transfer_id for _, _, p in events] == [sent.id, received.id, queued.id, refused.id]
    assert all(height == 3 for _, height, _ in events)
    for _, _, payment in events:
        assert payment == rows[payment.transfer_id], "an event shows the payment as it stands"

    # The same block again (a restart before the follow position was saved): no new rows.
    follow(db, book, [block(3, *carried)])
    assert book.payments([sent.id, received.id, others.id]).keys() == {sent.id, received.id}
    assert book.payment(received.id) == incoming


def test_seq_orders_queued_payments_by_height_then_position(tmp_path: Path):
    db, book = open_book(tmp_path / "node.db")
    first, second, third = (transfer(BANK, OTHER, a) for a in (1, 2, 3))
    with db.write() as conn:
        for n, tx in enumerate((first, second, third)):
            book.add_outgoing(conn, tx, f"req-{n}")
    follow(db, book, [block(4, (second, QUEUED), (first, QUEUED)), block(5, (third, QUEUED))])
    rows = db.query("SELECT transfer_id, seq FROM payments ORDER BY seq")
    assert [bytes(r[0]) for r in rows] == [second.id, first.id, third.id]
    assert [r[1] for r in rows] == [4 * SEQ_SPAN, 4 * SEQ_SPAN + 1, 5 * SEQ_SPAN]


def test_what_a_bank_does_to_a_transfer_in_its_own_block_follows_the_transfer(tmp_path: Path):
    # This bank's transfer that queued (sent by another of its clients' nodes, so this
    # node first sees it here) and at once its hold on it, then one paid to it and an
    # issuance, in that order in one block: the hold finds the payment the transfer
    # wrote, and the history lists them in the block's order.
    db, book = open_book(tmp_path / "node.db")
    queued = transfer(BANK, OTHER, 900)
    received = transfer(OTHER, BANK, 3)
    funding = issue(BANK, 1_000, "collateral-9")
    hold = _signed(BANK, hold=tx_pb.HoldQueued(transfer_id=queued.id))
    follow(db, book, [block(5, (queued, QUEUED), (hold, APPLIED), (received, SETTLED),
                            (funding, APPLIED))])

    assert book.payment(queued.id).held, "the hold came after the transfer in its block"
    newest_first = book.history(HistoryFilter(kinds=ALL_KINDS), 10, 0)[0]
    assert [p.transfer_id for p in newest_first] == [funding.id, received.id, queued.id]
