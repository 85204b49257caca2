"""Grafana dashboards (JSON model) from the dashboards' definitions.

For operators who run Grafana: ``deploy/grafana/provisioning`` declares the Prometheus
data source (uid ``straits-prometheus``) and a file provider that loads these
dashboards. Graphs become time-series panels with the same PromQL; a table becomes
one instant query per column, joined on the table's key label; the bank page's
``$bank`` is a dashboard variable listing the banks Prometheus knows.
"""

from __future__ import annotations

import json
import re
from typing import Any

from clients.dashboards.panels import BANK_VARIABLE, Graph, Page, Table, queries

DATASOURCE = {"type": "prometheus", "uid": "straits-prometheus"}
_UNITS = {"": "short", "s": "s", "bytes": "bytes", "percent": "percentunit",
          "per s": "ops", "minor units": "short"}
_COLUMN_UNITS = {"humanize1024": "bytes", "percent": "percentunit", "seconds": "s"}
WIDTH = 24  # Grafana's grid is 24 columns wide


def _legend(legend: str) -> str:
    return re.sub(r"\{(\w+)\}", r"{{\1}}", legend)


def _graph_panel(graph: Graph, panel_id: int, x: int, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": graph.title,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": _UNITS[graph.unit]}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": s.expr,
             "legendFormat": _legend(s.legend)}
            for i, s in enumerate(graph.series)
        ],
    }


def _table_panel(table: Table, panel_id: int, y: int) -> dict[str, Any]:
    targets = [{"refId": "rows", "datasource": DATASOURCE, "expr": table.rows,
                "instant": True, "format": "table"}]
    targets += [
        {"refId": column.title, "datasource": DATASOURCE, "expr": column.expr,
         "instant": True, "format": "table"}
        for column in table.columns if column.expr
    ]
    overrides = [
        {"matcher": {"id": "byName", "options": f"Value #{c.title}"},
         "properties": [{"id": "displayName", "value": c.title},
                        {"id": "unit", "value": _COLUMN_UNITS.get(c.format, "short")}]}
        for c in table.columns if c.expr
    ]
    labels = [c.label for c in table.columns if c.label]
    return {
        "id": panel_id,
        "type": "table",
        "title": table.title,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": WIDTH, "x": 0, "y": y},
        "fieldConfig": {"defaults": {}, "overrides": overrides},
        "targets": targets,
        "transformations": [
            {"id": "joinByField", "options": {"byField": table.key, "mode": "outer"}},
            {"id": "filterFieldsByName", "options": {"include": {
                "pattern": f"^({'|'.join([table.key, *labels])}|Value #(?!rows).*)$"}}},
        ],
    }


def render(page: Page) -> str:
    """The dashboard JSON of ``page``."""
    panels: list[dict[str, Any]] = []
    y = 0
    for index, graph in enumerate(page.graphs):
        panels.append(_graph_panel(graph, len(panels) + 1, (index % 2) * 12, y))
        if index % 2:
            y += 8
    y += 8 if len(page.graphs) % 2 else 0
    for table in page.tables:
        panels.append(_table_panel(table, len(panels) + 1, y))
        y += 8
    variables = []
    if any(BANK_VARIABLE in q for q in queries(page)):
        definition = "label_values(straits_ledger_account_balance_minor_units, account)"
        variables.append({
            "name": "bank", "label": "Bank", "type": "query", "datasource": DATASOURCE,
            "definition": definition, "query": {"query": definition, "refId": "banks"},
            "refresh": 2, "includeAll": False, "multi": False, "sort": 1,
        })
    dashboard = {
        "uid": f"straits-{page.slug}",
        "title": f"Straits · {page.title}",
        "description": page.summary,
        "tags": ["straits"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "15s",
        "time": {"from": "now-30m", "to": "now"},
        "links": [{"type": "dashboards", "tags": ["straits"], "title": "Straits",
                   "asDropdown": False, "includeVars": False}],
        "annotations": {"list": []},
        "templating": {"list": variables},
        "panels": panels,
    }
    return json.dumps(dashboard, indent=2) + "\n"
