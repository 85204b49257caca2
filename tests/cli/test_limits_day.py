"""Sender limits and the settlement day from `straits`, as a bank and the central bank
use them on a running network: a limit queues a payment the bank could cover, the
central bank sees the queue, closes the day, and the payer's node reports the payment
cancelled at the close; the day's summary is there for the bank and the regulator."""

from __future__ import annotations

import time

import pytest

from tests.bank.network import Network, running_network
from tests.cli.test_commands import straits


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A network of its own: positions toward a counterparty start at zero."""
    with running_network(tmp_path_factory.mktemp("limits-network"), banks=3) as network:
        yield network


def wait_until(condition, what: str, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    """A running network has no event to wait on here: poll until true or fail."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def test_a_limit_queues_a_payment_and_the_close_cancels_it_with_a_summary(
    network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    today = straits(network, capsys, "bank-c", "limits")["day"]
    shown = straits(network, capsys, "bank-c", "limits", "--set", "100", "--minor",
                    "--counterparty", "bank-a")
    assert shown["limits"] == [
        {
            "kind": "bilateral",
            "counterparty": "bank-a",
            "limit": 100,
            "position": 0,
            "room": 100,
        }
    ]
    straits(network, capsys, "central-bank", "issue", "bank-c", "1000", "bond-c", "--minor")
    payment = straits(network, capsys, "bank-c", "send", "bank-a", "300", "--minor")
    assert payment["status"] == "queued", "300 would pass the 100 limit toward bank-a"

    gridlock = straits(network, capsys, "central-bank", "gridlock")
    assert gridlock["gridlock"] and gridlock["queued_value"] >= 300
    row = next(b for b in gridlock["banks"] if b["bank"] == "bank-c")
    assert (row["queued_count"], row["queued_value"]) == (1, 300)
    seen = network.regulator().gridlock()
    assert (seen.gridlock, seen.queued_value) == (True, gridlock["queued_value"])

    closed = straits(network, capsys, "central-bank", "day", "close", str(today))
    assert closed["outcome"] == "applied", closed
    refused = straits(network, capsys, "central-bank", "day", "close", str(today), expect=1)
    assert "FAILED_PRECONDITION: invalid_governance" in refused, "a day closes once"

    bank = network.bank("bank-c")
    transfer_id = bytes.fromhex(payment["transfer_id"])
    wait_until(
        lambda: bank.payment(transfer_id=transfer_id).reason == "day_closed",
        "bank-c's node to report its payment cancelled at the close",
    )
    table = straits(network, capsys, "bank-c", "--table", "history", "--status", "cancelled")
    assert "day_closed" in table, table

    after = straits(network, capsys, "bank-c", "limits")
    assert (after["day"], after["last_day"]) == (today + 1, today)
    assert after["last_day_totals"]["cancelled_count"] == 1
    assert after["last_day_totals"]["cancelled_value"] == 300
    assert after["limits"][0]["limit"] == 100 and after["limits"][0]["position"] == 0
    regulator_view = network.regulator().account("bank-c").day
    assert regulator_view.last_day_totals.cancelled_value == 300
    assert not network.regulator().gridlock().gridlock, "the close emptied every queue"
