"""A bank node's book records the central bank's issuances to the bank and the bank's
redemptions from the blocks it follows: once each, across a restart and a block seen
again, apart from transfers, and only what a block applied."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from straits.bank.v1 import bank_pb2 as pb
from straits.ledger.v1 import receipt_pb2 as receipt_pb
from straits.ledger.v1 import transaction_pb2 as tx_pb

from ledger.keys import PrivateKey
from ledger.transaction import Transaction, sign
from services.participant.bank.payments import _SCHEMA, HistoryFilter, PaymentBook
from services.participant.follower import FollowedBlock
from services.participant.outbox import NodeDb, Outbox

CHAIN = "straits-test"
BANK, OTHER, CENTRAL = "bank-a", "bank-b", "central-bank"
KEYS = {p: PrivateKey.from_seed(bytes([i]) * 32) for i, p in enumerate((BANK, OTHER, CENTRAL))}
GENESIS_MS = 1_764_720_000_000
ALL_KINDS = (pb.PAYMENT_KIND_TRANSFER, pb.PAYMENT_KIND_ISSUANCE, pb.PAYMENT_KIND_REDEMPTION)
_nonces = itertools.count(1)

APPLIED, SETTLED, REJECTED = (
    receipt_pb.OUTCOME_APPLIED, receipt_pb.OUTCOME_SETTLED, receipt_pb.OUTCOME_REJECTED
)


def _signed(signer: str, **kind: object) -> Transaction:
    body = tx_pb.TransactionBody(signer=signer, valid_until_height=1000, nonce=next(_nonces),
                                 **kind)  # type: ignore[arg-type]
    return sign(CHAIN, KEYS[signer], body)


def issue(bank: str, amount: int, collateral_ref: str) -> Transaction:
    return _signed(CENTRAL, issue=tx_pb.Issue(bank=bank, amount=amount,
                                              collateral_ref=collateral_ref))


def redeem(amount: int, collateral_ref: str) -> Transaction:
    return _signed(BANK, redeem=tx_pb.Redeem(amount=amount, collateral_ref=collateral_ref))


def transfer(payer: str, payee: str, amount: int) -> Transaction:
    return _signed(payer, transfer=tx_pb.Transfer(payee=payee, amount=amount,
                                                  priority=tx_pb.PRIORITY_NORMAL))


def block(height: int, *carried: tuple[Transaction, int]) -> FollowedBlock:
    return FollowedBlock(
        height=height,
        hash=bytes([height]) * 32,
        timestamp_ms=GENESIS_MS + height * 1000,
        transactions=tuple(tx for tx, _ in carried),
        receipts={tx.id: receipt_pb.Receipt(transaction_id=tx.id, outcome=outcome)
                  for tx, outcome in carried},
        settlements=(),
    )


def follow(db: NodeDb, book: PaymentBook, blocks: Sequence[FollowedBlock]) -> None:
    """What the node does with each followed block: one database transaction apiece."""
    for followed in blocks:
        with db.write() as conn:
            Outbox.committed(conn, followed.height,
                             [(tx.id, followed.receipts[tx.id]) for tx in followed.transactions])
            book.record_block(conn, followed, Outbox.expire(conn, followed.height))
            NodeDb.set_meta(conn, "follow_height", followed.height)


def open_book(path: Path) -> tuple[NodeDb, PaymentBook]:
    db = NodeDb(path)
    Outbox(db, CHAIN)
    return db, PaymentBook(db, BANK, CENTRAL)


def listed(book: PaymentBook, kinds: tuple[int, ...] = ALL_KINDS) -> list[pb.Payment]:
    payments, _ = book.history(HistoryFilter(kinds=kinds), 1000, 0)
    return payments


def test_a_restarted_node_catching_up_records_each_issuance_and_redemption_once(
    tmp_path: Path,
) -> None:
    first_issue = issue(BANK, 1_000_00, "bond-1")
    paid = transfer(BANK, OTHER, 300_00)
    redeemed = redeem(200_00, "bond-1")
    refused_redeem = redeem(5_000_00, "bond-9")
    second_issue = issue(BANK, 700_00, "bond-2")
    chain = [
        block(1, (first_issue, APPLIED), (issue(OTHER, 500_00, "bond-b"), APPLIED),
              (paid, SETTLED)),
        block(2, (redeemed, APPLIED), (refused_redeem, REJECTED),
              (issue(BANK, 1, "refused"), REJECTED)),
        block(3, (second_issue, APPLIED)),
    ]
    db, book = open_book(tmp_path / "node.db")
    follow(db, book, chain[:2])
    db.conn.close()

    # Restart: the file says where the node stopped; it catches up from there, and a
    # validator serving a block again (block 2, then 3 twice) changes nothing.
    db, book = open_book(tmp_path / "node.db")
    assert db.get_meta("follow_height", 0) == 2
    follow(db, book, [chain[2], chain[1], chain[2]])

    entries = listed(book)[::-1]  # oldest first
    assert [(p.kind, p.direction, p.payer, p.payee, p.amount, p.reference, p.status)
            for p in entries] == [
        (pb.PAYMENT_KIND_ISSUANCE, pb.DIRECTION_INCOMING, CENTRAL, BANK, 1_000_00, "bond-1",
         pb.PAYMENT_STATUS_SETTLED),
        (pb.PAYMENT_KIND_TRANSFER, pb.DIRECTION_OUTGOING, BANK, OTHER, 300_00, "",
         pb.PAYMENT_STATUS_SETTLED),
        (pb.PAYMENT_KIND_REDEMPTION, pb.DIRECTION_OUTGOING, BANK, CENTRAL, 200_00, "bond-1",
         pb.PAYMENT_STATUS_SETTLED),
        (pb.PAYMENT_KIND_ISSUANCE, pb.DIRECTION_INCOMING, CENTRAL, BANK, 700_00, "bond-2",
         pb.PAYMENT_STATUS_SETTLED),
    ]
    by_id = {p.transfer_id: p for p in entries}
    for tx, height in ((first_issue, 1), (redeemed, 2), (second_issue, 3)):
        entry = by_id[tx.id]
        assert (entry.committed_height, entry.settled_height) == (height, height)
        assert entry.settled_time_ms == entry.created_time_ms == GENESIS_MS + height * 1000


def test_history_lists_transfers_only_unless_asked_for_other_kinds(tmp_path: Path) -> None:
    db, book = open_book(tmp_path / "node.db")
    paid = transfer(OTHER, BANK, 40_00)
    follow(db, book, [block(1, (issue(BANK, 100_00, "bond-1"), APPLIED), (paid, SETTLED)),
                      block(2, (redeem(10_00, "bond-1"), APPLIED))])

    assert [p.transfer_id for p in listed(book, (pb.PAYMENT_KIND_TRANSFER,))] == [paid.id]
    assert [p.kind for p in listed(book, (pb.PAYMENT_KIND_ISSUANCE,))] == [
        pb.PAYMENT_KIND_ISSUANCE]
    assert len(listed(book)) == 3
    incoming, _ = book.history(HistoryFilter(direction=pb.DIRECTION_INCOMING, kinds=ALL_KINDS),
                               1000, 0)
    assert {p.kind for p in incoming} == {pb.PAYMENT_KIND_TRANSFER, pb.PAYMENT_KIND_ISSUANCE}
    # Settlement events (and so WatchSettlements and the payment metrics) stay transfers.
    assert [e[2].transfer_id for e in book.events_after(0, pb.DIRECTION_UNSPECIFIED)] == [
        paid.id]


def test_a_redemption_the_node_signed_keeps_its_request_id(tmp_path: Path) -> None:
    db, book = open_book(tmp_path / "node.db")
    redeemed = redeem(10_00, "bond-1")
    with db.write() as conn:
        Outbox.add(conn, redeemed, "redeem-bond-1", b"fingerprint")

    follow(db, book, [block(1, (redeemed, APPLIED))])

    [entry] = listed(book)
    assert (entry.request_id, entry.kind) == ("redeem-bond-1", pb.PAYMENT_KIND_REDEMPTION)


def test_a_book_written_before_kinds_reads_its_payments_as_transfers(tmp_path: Path) -> None:
    db = NodeDb(tmp_path / "node.db")
    db.script(_SCHEMA.replace(",\n    kind INTEGER NOT NULL DEFAULT 1", ""))
    assert "kind" not in {row[1] for row in db.query("PRAGMA table_info(payments)")}
    db.script("INSERT INTO payments (transfer_id, direction, payer, payee, amount, priority,"
              " reference, status, created_time_ms) VALUES (x'01', 2, 'bank-b', 'bank-a', 5,"
              " 2, 'old', 3, 1)")

    book = PaymentBook(db, BANK, CENTRAL)

    [old] = listed(book)
    assert (old.transfer_id, old.kind, old.amount) == (b"\x01", pb.PAYMENT_KIND_TRANSFER, 5)
