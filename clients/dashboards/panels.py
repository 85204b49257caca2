"""The regulator's dashboards as data: pages of graphs and tables, each a PromQL query.

One definition feeds both renderings, the Prometheus console pages
(``clients.dashboards.consoles``) and the Grafana dashboards
(``clients.dashboards.grafana``), so the two never disagree, and the tests check
every query here with promtool and against a live Prometheus.

Conventions: a graph's legend is a format with ``{label}`` fields; ``$bank`` in a
query stands for the bank a drill-down page shows. A table has one row per value of
its ``key`` label in ``rows``; each column is a query whose series carry that label
(or a label of the row's own series). Money is in minor units (cents).
"""

from __future__ import annotations

from dataclasses import dataclass, field

BANK_VARIABLE = "$bank"


@dataclass(frozen=True)
class Series:
    expr: str
    legend: str = "{node}"


@dataclass(frozen=True)
class Graph:
    title: str
    series: tuple[Series, ...]
    unit: str = ""  # "", "s", "bytes", "percent", "minor units", "per s"


@dataclass(frozen=True)
class Column:
    title: str
    expr: str = ""  # a vector with the table's key label; empty: show `label` of the row
    label: str = ""
    format: str = "humanize"  # humanize, humanize1024, seconds, integer, up, label


@dataclass(frozen=True)
class Table:
    title: str
    rows: str  # a vector with one series per row, carrying the key label
    key: str
    columns: tuple[Column, ...]
    link: str = ""  # page a row's key links to, with the key as ?bank=


@dataclass(frozen=True)
class Page:
    slug: str
    title: str
    summary: str
    graphs: tuple[Graph, ...]
    tables: tuple[Table, ...]
    missing: tuple[str, ...] = field(default=())  # what the page will show once measured


def _or_zero(expr: str, by: str = "node", kind: str = "validator") -> str:
    """``expr`` summed by ``by``, with 0 for nodes that have not counted anything yet
    (a labelled counter has no series until its first event)."""
    return f"sum by ({by}) ({expr}) or on ({by}) (0 * straits_ledger_height{{kind=\"{kind}\"}})"


VALIDATOR = 'kind="validator"'
SETTLED_OUT = 'status="settled",direction="outgoing"'

ALERTS = Table(
    "Alerts pending or firing",
    rows="ALERTS",
    key="alertname",
    columns=(
        Column("node", label="node", format="label"),
        Column("severity", label="severity", format="label"),
        Column("state", label="alertstate", format="label"),
    ),
)

OVERVIEW = Page(
    "overview",
    "Overview",
    "Is the network deciding, how fast, and how soon is a payment final.",
    graphs=(
        Graph("Settled payments per second", (Series(
            f"sum(rate(straits_bank_payments_finalised_total{{{SETTLED_OUT}}}[1m]))",
            "settled"),), "per s"),
        Graph("Committed transactions per second", (Series(
            "straits:committed_transactions:rate1m"),), "per s"),
        Graph("Finality: block proposed to committed", (
            Series("histogram_quantile(0.5, sum by (le) (rate("
                   f"straits_consensus_commit_latency_seconds_bucket{{{VALIDATOR}}}[1m])))",
                   "p50"),
            Series("histogram_quantile(0.99, sum by (le) (rate("
                   f"straits_consensus_commit_latency_seconds_bucket{{{VALIDATOR}}}[1m])))",
                   "p99"),
        ), "s"),
        Graph("Blocks per second", (Series(
            f"rate(straits_consensus_blocks_committed_total{{{VALIDATOR}}}[1m])"),), "per s"),
        Graph("Height", (Series(f"straits_ledger_height{{{VALIDATOR}}}"),)),
        Graph("Round changes per minute", (Series(
            f"increase(straits_consensus_round_changes_total{{{VALIDATOR}}}[1m])"),)),
    ),
    tables=(
        Table(
            "Nodes",
            rows='up{job="straits"}',
            key="node",
            columns=(
                Column("kind", label="kind", format="label"),
                Column("scrape", 'up{job="straits"}', format="up"),
                Column("height", "straits_ledger_height or straits_participant_followed_height",
                       format="integer"),
                Column("CPU", "rate(process_cpu_seconds_total[1m])", format="percent"),
                Column("memory", "process_resident_memory_bytes", format="humanize1024"),
            ),
        ),
        ALERTS,
    ),
)

SETTLEMENT = Page(
    "settlement",
    "Settlement",
    "What settles, what waits in queues, and the money in circulation.",
    graphs=(
        Graph("Payments settled per minute", (Series(
            f"sum(increase(straits_bank_payments_finalised_total{{{SETTLED_OUT}}}[1m]))",
            "payments"),)),
        Graph("Value settled per minute", (Series(
            f"sum(increase(straits_bank_payments_finalised_minor_units_total{{{SETTLED_OUT}}}"
            "[1m]))", "value"),), "minor units"),
        Graph("Queued payments per bank", (Series(
            'straits_bank_payments{status="queued",direction="outgoing"}'),)),
        Graph("Queued value per bank", (Series(
            "max by (account) (straits_ledger_account_queued_out_minor_units)", "{account}"),),
            "minor units"),
        Graph("Money in circulation", (Series(
            "max(straits_ledger_supply_minor_units)", "supply"),), "minor units"),
        Graph("Transfers waiting in queues (ledger)", (Series(
            f"max(straits_ledger_queued_transfers{{{VALIDATOR}}})", "queued"),)),
    ),
    tables=(
        Table(
            "Banks",
            rows="max by (account) (straits_ledger_account_balance_minor_units)",
            key="account",
            columns=(
                Column("balance", "max by (account) (straits_ledger_account_balance_minor_units)",
                       format="integer"),
                Column("queued out", "max by (account) "
                       "(straits_ledger_account_queued_out_minor_units)", format="integer"),
                Column("queued in", "max by (account) "
                       "(straits_ledger_account_queued_in_minor_units)", format="integer"),
                Column("position", "max by (account) "
                       "(straits_ledger_account_position_minor_units)", format="integer"),
                Column("payments queued", 'label_replace(straits_bank_payments{status="queued",'
                       'direction="outgoing"}, "account", "$1", "node", "(.*)")',
                       format="integer"),
            ),
            link="bank",
        ),
        ALERTS,
    ),
    missing=(
        "gridlock (value locked in queues that no single payment can free)",
        "payments released by offsetting (the liquidity-saving mechanism)",
        "the settlement-day summary",
    ),
)

VALIDATORS = Page(
    "validators",
    "Validators",
    "Each validator: its height and lag, what it refused, its peers, its CPU and memory.",
    graphs=(
        Graph("Height", (Series(f"straits_ledger_height{{{VALIDATOR}}}"),)),
        Graph("Blocks behind the highest validator", (Series(
            f"scalar(max(straits_ledger_height{{{VALIDATOR}}})) - "
            f"straits_ledger_height{{{VALIDATOR}}}"),)),
        # Messages for a height already decided ("old_height") are left out: the slowest
        # validator's commit arrives after the quorum's at nearly every block.
        Graph("Rejected proposals and messages per minute", (
            Series(_or_zero("increase(straits_consensus_proposals_rejected_total[1m])"),
                   "{node} proposals"),
            Series(_or_zero('increase(straits_consensus_messages_rejected_total'
                            '{reason!="old_height"}[1m])'), "{node} messages"),
        )),
        Graph("Consensus messages delivered to peers per second", (Series(
            "sum by (node) (rate(straits_peer_messages_delivered_total[1m]))"),), "per s"),
        Graph("Failed calls to peers per second", (Series(
            _or_zero("rate(straits_peer_failed_calls_total[1m])")),), "per s"),
        Graph("CPU", (Series(f"rate(process_cpu_seconds_total{{{VALIDATOR}}}[1m])"),),
              "percent"),
        Graph("Resident memory", (Series(f"process_resident_memory_bytes{{{VALIDATOR}}}"),),
              "bytes"),
    ),
    tables=(
        Table(
            "Validators",
            rows=f"up{{{VALIDATOR}}}",
            key="node",
            columns=(
                Column("scrape", f"up{{{VALIDATOR}}}", format="up"),
                Column("height", f"straits_ledger_height{{{VALIDATOR}}}", format="integer"),
                Column("behind", f"scalar(max(straits_ledger_height{{{VALIDATOR}}})) - "
                       f"straits_ledger_height{{{VALIDATOR}}}", format="integer"),
                Column("round", f"straits_consensus_round{{{VALIDATOR}}}", format="integer"),
                Column("mempool", "straits_mempool_transactions", format="integer"),
                Column("refused (5m)", _or_zero(
                    "increase(straits_consensus_proposals_rejected_total[5m])"),
                    format="integer"),
                Column("CPU", f"rate(process_cpu_seconds_total{{{VALIDATOR}}}[1m])",
                       format="percent"),
                Column("memory", f"process_resident_memory_bytes{{{VALIDATOR}}}",
                       format="humanize1024"),
            ),
        ),
        ALERTS,
    ),
)

_BANK = f'node="{BANK_VARIABLE}"'
_ACCOUNT = f'account="{BANK_VARIABLE}"'

BANK = Page(
    "bank",
    "Bank",
    "One bank: its payments by status, its queue and its position.",
    graphs=(
        Graph("Payments not yet final", (Series(
            f"straits_bank_payments{{{_BANK}}}", "{status} {direction}"),)),
        Graph("Payments finalised per minute", (Series(
            f"increase(straits_bank_payments_finalised_total{{{_BANK}}}[1m])",
            "{status} {direction}"),)),
        Graph("Queued value, out and in", (
            Series(f"max(straits_ledger_account_queued_out_minor_units{{{_ACCOUNT}}})", "out"),
            Series(f"max(straits_ledger_account_queued_in_minor_units{{{_ACCOUNT}}})", "in"),
        ), "minor units"),
        Graph("Balance and position", (
            Series(f"max(straits_ledger_account_balance_minor_units{{{_ACCOUNT}}})", "balance"),
            Series(f"max(straits_ledger_account_position_minor_units{{{_ACCOUNT}}})",
                   "position"),
        ), "minor units"),
    ),
    tables=(
        Table(
            "Account",
            rows=f"max by (account) (straits_ledger_account_balance_minor_units{{{_ACCOUNT}}})",
            key="account",
            columns=tuple(
                Column(title, f"max by (account) (straits_ledger_account_{name}_minor_units"
                       f"{{{_ACCOUNT}}})", format="integer")
                for title, name in (("balance", "balance"), ("queued out", "queued_out"),
                                    ("queued in", "queued_in"), ("position", "position"))
            ),
        ),
        Table(
            "Payments by status",
            rows=f"sum by (status) (straits_bank_payments{{{_BANK}}}) or sum by (status) "
                 f"(straits_bank_payments_finalised_total{{{_BANK}}})",
            key="status",
            columns=tuple(
                Column(f"{direction} {what}", f"sum by (status) ({metric}{{{_BANK},"
                       f'direction="{direction}"}})', format="integer")
                for what, metric in (
                    ("now", "straits_bank_payments"),
                    ("since start", "straits_bank_payments_finalised_total"),
                )
                for direction in ("outgoing", "incoming")
            ),
        ),
        ALERTS,
    ),
)

PAGES = (OVERVIEW, SETTLEMENT, VALIDATORS, BANK)


def queries(page: Page) -> list[str]:
    """Every PromQL query the page runs, as written (``$bank`` unreplaced)."""
    found = [s.expr for g in page.graphs for s in g.series]
    for table in page.tables:
        found.append(table.rows)
        found += [c.expr for c in table.columns if c.expr]
    return found
