"""Every query of every dashboard is valid PromQL (promtool) and returns data from a live
Prometheus watching a loaded network; the generated pages and Grafana JSON are current."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from clients.dashboards import __main__ as generate
from clients.dashboards.panels import BANK_VARIABLE, PAGES, queries
from tests.dashboards.conftest import STOPPED_BANK, Watched

SHOWN_BANK = "bank-a"
ALL_QUERIES = sorted({q.replace(BANK_VARIABLE, SHOWN_BANK) for p in PAGES for q in queries(p)})
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_generated_pages_and_dashboards_are_current() -> None:
    stale = [str(p) for p, text in generate.rendered().items()
             if not p.exists() or p.read_text() != text]
    assert not stale, f"stale (run python -m clients.dashboards): {stale}"


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("expected promtool on PATH: run `make prometheus`")
    rules = {"groups": [{"name": "dashboard-queries", "rules": [
        {"record": f"straits_dashboard:query_{i}", "expr": q} for i, q in enumerate(ALL_QUERIES)
    ]}]}
    path = tmp_path / "queries.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(ALL_QUERIES)} rules found" in done.stdout, done.stdout


@pytest.mark.slow
def test_every_query_returns_data_from_a_live_prometheus(watched: Watched) -> None:
    def answered() -> bool | dict[str, object]:
        empty = {}
        for query in ALL_QUERIES:
            result = watched.query(query)
            finite = [r for r in result if math.isfinite(float(r["value"][1]))]
            if not finite:
                empty[query] = result
        return empty if empty else True

    watched.until("every dashboard query to return data", answered)


@pytest.mark.slow
def test_alerts_table_query_sees_the_stopped_node_firing(watched: Watched) -> None:
    def firing() -> bool | list[dict]:  # type: ignore[type-arg]
        result = watched.query('ALERTS{alertname="StraitsNodeDown",alertstate="firing"}')
        return True if {r["metric"]["node"] for r in result} == {STOPPED_BANK} else result

    watched.until(f"StraitsNodeDown firing for {STOPPED_BANK}", firing)


def test_grafana_dashboards_run_the_same_queries() -> None:
    for page in PAGES:
        dashboard = json.loads((DEPLOY / "grafana" / "dashboards" /
                                f"straits-{page.slug}.json").read_text())
        exprs = sorted(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])
        assert exprs == sorted(queries(page)), page.slug
        assert {p["datasource"]["uid"] for p in dashboard["panels"]} == {"straits-prometheus"}
        uses_bank = any(BANK_VARIABLE in q for q in queries(page))
        names = [v["name"] for v in dashboard["templating"]["list"]]
        assert names == (["bank"] if uses_bank else []), page.slug
    provisioning = DEPLOY / "grafana" / "provisioning"
    assert "uid: straits-prometheus" in (provisioning / "datasources" / "straits.yml").read_text()
    assert "type: file" in (provisioning / "dashboards" / "straits.yml").read_text()


@pytest.mark.slow
def test_console_pages_render_without_template_errors(watched: Watched) -> None:
    for page in PAGES:
        with urllib.request.urlopen(watched.prometheus.console(page.slug), timeout=10) as answer:
            text = answer.read().decode()
        assert answer.status == 200 and "error executing template" not in text, text[-500:]
        assert text.count('class="straits-graph"') == len(page.graphs), page.slug
