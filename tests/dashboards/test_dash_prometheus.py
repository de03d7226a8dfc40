"""The Prometheus fleet dashboard: on the provisioned Prometheus datasource, PromQL over the
metrics docs/operations.md lists (which tests/test_operations.py checks against the services),
variables it defines, one site's gateways only."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import Lang, render
from dashboards.fleet import prometheus_fleet_dashboard
from dashboards.inventory import load_sites

REPO = Path(__file__).resolve().parents[2]
DATASOURCE = REPO / "dashboards" / "provisioning" / "datasources" / "prometheus.yaml"
OPERATIONS = REPO / "docs" / "operations.md"
_ROW = re.compile(r"^\| `(dynamo_[a-z_]+)` \| (?:counter|gauge|histogram) \|", re.MULTILINE)
BUILTIN = {"__rate_interval", "__interval", "__range"}


def _dashboards() -> list[tuple[str, dict[str, Any]]]:
    [site] = load_sites(REPO / "firmware-config" / "sites")
    return [(lang.value, json.loads(render(prometheus_fleet_dashboard(site, lang))))
            for lang in Lang]


@pytest.mark.parametrize("lang,dashboard", _dashboards())
def test_promql_on_the_provisioned_datasource_and_listed_metrics(
        lang: str, dashboard: dict[str, Any]) -> None:
    [provisioned] = yaml.safe_load(DATASOURCE.read_text())["datasources"]
    listed = set(_ROW.findall(OPERATIONS.read_text(encoding="utf-8")))
    variables = {v["name"] for v in dashboard["templating"]["list"]} | BUILTIN
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 12
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": provisioned["uid"]}
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            expr = target["expr"]
            used = {re.sub(r"_(bucket|count|sum)$", "", n)
                    for n in re.findall(r"\bdynamo_[a-z_]+\b", expr)}
            assert used and used <= listed, (panel["title"], used - listed)
            assert set(re.findall(r"\$(\w+)", expr)) <= variables, expr
            assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}")
            # A gateway's series are this site's and the chosen gateways' only.
            if "dynamo_gateway_" in expr or "dynamo_collector_gateway_" in expr:
                assert 'site="ariege"' in expr and 'gateway=~"$gateway"' in expr, expr


def test_french_and_english_titles_differ_and_queries_do_not() -> None:
    (_, french), (_, english) = _dashboards()

    def titles(d: dict[str, Any]) -> list[str]:
        return [p["title"] for p in d["panels"]]

    def exprs(d: dict[str, Any]) -> list[str]:
        return [t["expr"] for p in d["panels"] for t in p.get("targets", [])]

    assert french["title"].startswith("Flotte (Prometheus)")
    assert english["title"].startswith("Fleet (Prometheus)")
    assert sum(f != e for f, e in zip(titles(french), titles(english), strict=True)) >= 12
    assert exprs(french) == exprs(english)
