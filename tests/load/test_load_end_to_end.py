"""``straits load`` against a real network (4 validators, the central bank and 3 banks,
each with its own gRPC server and mutual TLS): a few seconds at a low rate on each path,
with deliberately bad payments mixed in. Every bad one must be refused, every good one
settle, and the JSON report and the PNG chart must be written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from clients.cli.main import main
from tests.bank.network import Network, running_network

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with running_network(tmp_path_factory.mktemp("load-network"), banks=3) as network:
        yield network


def run_load(network: Network, out: Path, *options: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    report, chart = out / "report.json", out / "chart.png"
    status = main(["load", "--network", str(network.layout.directory), "--duration", "3",
                   "--seed", "11", "--bad-share", "0.2", "--json-out", str(report),
                   "--chart", str(chart), *options])
    assert chart.read_bytes().startswith(PNG_SIGNATURE), "the chart should be a PNG"
    assert chart.stat().st_size > 1000, "the chart should not be empty"
    return status, json.loads(report.read_text())


def check_every_bad_payment_refused_and_every_good_one_settled(document: dict) -> None:  # type: ignore[type-arg]
    bad = document["bad_payments"]
    assert bad["sent"] > 0, "a bad share of 0.2 should have sent some bad payments"
    assert bad["not_refused"] == 0 and bad["refused"] == bad["sent"], bad
    assert document["count"] > 0 and document["settled"] == document["count"], (
        document["status_counts"], document["error_reasons"])
    assert 0 < document["percentiles_ms"]["p50"] <= document["percentiles_ms"]["p99"]
    assert sum(document["per_second"]) == document["settled"]
    assert document["machine"]["cores"] >= 1 and document["machine"]["python"]


def test_through_the_bank_nodes_every_bad_payment_is_refused(
        network: Network, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, document = run_load(network, tmp_path, "--via", "bank", "--rate", "20",
                                "--fund", "1000000")
    assert status == 0
    check_every_bad_payment_refused_and_every_good_one_settled(document)
    assert document["config"]["via"] == "bank" and document["config"]["rate"] == 20
    assert set(document["bad_payments"]["by_fault"]) <= {
        "duplicate_request", "zero_amount", "unknown_payee"}
    printed = capsys.readouterr()
    assert "Latency distribution:" in printed.out and "p99.9 in" in printed.out
    assert "NOT refused" in printed.out and "sent" in printed.err, "summary and progress line"


def test_straight_to_the_validators_in_batches_every_bad_payment_is_refused(
        network: Network, tmp_path: Path) -> None:
    status, document = run_load(network, tmp_path, "--via", "validators", "--rate", "40",
                                "--batch", "5", "--fund", "1000000")
    assert status == 0
    check_every_bad_payment_refused_and_every_good_one_settled(document)
    assert set(document["bad_payments"]["by_fault"]) <= {
        "bad_signature", "resent", "zero_amount", "unknown_payee"}


def test_a_closed_loop_run_stops_at_its_count_with_every_payment_settled(
        network: Network, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    status = main(["load", "--network", str(network.layout.directory), "--concurrency", "3",
                   "--batch", "2", "--count", "30", "--duration", "20", "--fund", "1000000",
                   "--json-out", str(report)])
    document = json.loads(report.read_text())
    assert status == 0
    assert document["count"] == document["settled"] == 30, document["status_counts"]
    assert document["config"]["concurrency"] == 3 and document["config"]["rate"] is None


def test_presigned_payments_settle_and_faulty_ones_are_still_refused(
        network: Network, tmp_path: Path) -> None:
    # 20 presigned, the rest of the closed loop's payments signed as they go.
    status, document = run_load(network, tmp_path, "--via", "validators", "--concurrency", "2",
                                "--batch", "5", "--presign", "20", "--fund", "1000000")
    assert status == 0
    check_every_bad_payment_refused_and_every_good_one_settled(document)
    assert document["config"]["presign"] == 20
    assert document["count"] > 20, "the run went on past its presigned payments"
