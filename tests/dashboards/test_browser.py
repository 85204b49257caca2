"""Each console page as a regulator sees it: opened in headless Chromium (Debian's
``chromium``) against a live Prometheus watching a loaded network. The graphs must have
drawn lines, the tables must list the network's nodes and the firing alert, and a
screenshot of every page is kept (test-artifacts/dashboards/, or $STRAITS_ARTIFACTS)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.dashboards.conftest import STOPPED_BANK, Watched

pytestmark = pytest.mark.slow  # a loaded network, a firing alert, 8 browser runs: ~90 s

WINDOW = "1240,1500"
# Virtual time lets the page's script fetch and draw before the DOM is read.
BUDGET_MS = "20000"


@dataclass
class Graph:
    title: str = ""
    drawn: int = -1
    error: str = ""
    points: list[int] = field(default_factory=list)  # points per polyline


@dataclass
class Table:
    title: str
    rows: list[list[str]] = field(default_factory=list)


class Page(HTMLParser):
    """The graphs and tables of a rendered console page."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.graphs: list[Graph] = []
        self.tables: list[Table] = []
        self.choices: list[str] = []  # the bank page's links to each bank
        self._graph: Graph | None = None
        self._depth = 0
        self._in_title = self._in_cell = False
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "div" and a.get("class") == "straits-graph":
            self._graph = Graph(drawn=int(a.get("data-drawn") or -1),
                                error=a.get("data-error") or "")
            self.graphs.append(self._graph)
            self._depth = 0
        elif self._graph is not None:
            if tag == "div":
                self._depth += 1
            elif tag == "h3":
                self._in_title = True
            elif tag == "polyline":
                self._graph.points.append(len((a.get("points") or "").split()))
        if tag == "a" and (a.get("href") or "").startswith("bank.html?bank="):
            self.choices.append((a.get("href") or "").partition("=")[2])
        if tag == "table" and a.get("class") == "straits-table":
            self.tables.append(Table(a.get("data-title") or ""))
        elif tag == "tr" and self.tables:
            self.tables[-1].rows.append([])
        elif tag == "td" and self.tables:
            self._in_cell = True
            self.tables[-1].rows[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "h3":
            self._in_title = False
        elif tag == "td":
            self._in_cell = False
        elif tag == "div" and self._graph is not None:
            if self._depth == 0:
                self._graph = None
            else:
                self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._in_title and self._graph is not None:
            self._graph.title += data
        if self._in_cell:
            self.tables[-1].rows[-1][-1] += data.strip()

    def rows(self, title: str) -> list[list[str]]:
        """The cells of each row of the table ``title`` (the header row has none)."""
        return [row for row in next(t for t in self.tables if t.title == title).rows if row]

    def table(self, title: str) -> dict[str, list[str]]:
        """Rows of the table ``title``, by their first cell (unique in node tables)."""
        return {row[0]: row for row in self.rows(title)}


def chromium(url: str, *action: str) -> str:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("expected Debian's chromium on PATH: run `make chromium` (or `make test`)")
    # As root Chromium refuses to start without --no-sandbox.
    sandbox = ["--no-sandbox"] if os.geteuid() == 0 else []
    done = subprocess.run(
        [binary, "--headless", "--disable-gpu", "--hide-scrollbars", *sandbox,
         f"--window-size={WINDOW}", f"--virtual-time-budget={BUDGET_MS}", *action, url],
        capture_output=True, text=True, timeout=90,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def ready(watched: Watched) -> Watched:
    """The load has run and the stopped bank's alert fires: what the pages should show."""
    watched.until("the load to finish", watched.load_done.is_set)
    watched.until(
        f"StraitsNodeDown firing for {STOPPED_BANK}",
        lambda: bool(watched.query(
            'ALERTS{alertname="StraitsNodeDown",alertstate="firing"}')) or "not yet",
    )
    return watched


def opened(watched: Watched, artifacts: Path, slug: str, query: str = "") -> Page:
    url = watched.prometheus.console(slug) + query
    screenshot = artifacts / f"{slug}.png"
    screenshot.unlink(missing_ok=True)
    chromium(url, f"--screenshot={screenshot}")
    assert screenshot.stat().st_size > 20_000, f"{screenshot} looks blank"
    page = Page(chromium(url, "--dump-dom"))
    assert page.graphs, f"{slug}: no graph on the page"
    for graph in page.graphs:
        assert not graph.error, f"{slug}: {graph.title!r} failed: {graph.error}"
        assert graph.drawn >= 1 and graph.points and max(graph.points) >= 2, (
            f"{slug}: {graph.title!r} drew no line ({graph})")
    # Other alerts may show too (a node slow to answer a scrape on a busy machine).
    alerts = page.rows("Alerts pending or firing")
    assert ["StraitsNodeDown", STOPPED_BANK, "critical", "firing"] in alerts, alerts
    return page


def test_overview_lists_every_node_and_the_one_that_is_down(ready: Watched,
                                                             artifacts: Path) -> None:
    page = opened(ready, artifacts, "overview")
    nodes = page.table("Nodes")
    assert set(nodes) - {"node"} == ready.nodes, nodes
    assert nodes[STOPPED_BANK][2] == "down" and nodes["validator-1"][2] == "up", nodes


def queued_payment_scraped(ready: Watched) -> None:
    """bank-b's queued payment comes from bank-b's own node: one scrape of it that timed
    out on a busy machine leaves the series stale for a moment, and a page opened then
    shows no value. Wait until Prometheus holds it."""
    ready.until(
        "bank-b's queued payment in Prometheus",
        lambda: bool(ready.query('straits_bank_payments{node="bank-b",status="queued",'
                                 'direction="outgoing"} == 1')) or "not yet",
    )


def test_settlement_shows_each_banks_queue(ready: Watched, artifacts: Path) -> None:
    queued_payment_scraped(ready)
    page = opened(ready, artifacts, "settlement")
    banks = page.table("Banks")
    assert {"bank-a", "bank-b", STOPPED_BANK} <= set(banks), banks
    columns = ["account", "balance", "queued out", "queued in", "position", "payments queued"]
    bank_b = dict(zip(columns, banks["bank-b"], strict=True))
    assert bank_b["queued out"] == "90000000" and bank_b["payments queued"] == "1", bank_b


def test_validators_lists_each_validator(ready: Watched, artifacts: Path) -> None:
    page = opened(ready, artifacts, "validators")
    validators = page.table("Validators")
    assert set(validators) == {f"validator-{i}" for i in range(1, 5)}, validators
    assert {row[1] for row in validators.values()} == {"up"}, validators


def test_bank_drill_down_shows_the_banks_account_and_payments(ready: Watched,
                                                               artifacts: Path) -> None:
    queued_payment_scraped(ready)
    page = opened(ready, artifacts, "bank", "?bank=bank-b")
    assert page.choices == ["bank-a", "bank-b", STOPPED_BANK], page.choices
    assert set(page.table("Account")) == {"bank-b"}
    statuses = page.table("Payments by status")
    assert statuses["queued"][1] == "1", statuses  # outgoing, waiting now
    assert int(statuses["settled"][4]) > 0, statuses  # incoming, since start
