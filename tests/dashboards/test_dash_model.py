"""The generated JSON against Grafana's dashboard model, and what a schema cannot say.

grafana-dashboard.schema.json beside this file is a concise schema of Grafana 11's dashboard
model (see its $comment); the checks below add the cross-references Grafana relies on: unique
panel ids, a grid without overlaps, the provisioned datasource's uid, defined variables,
expressions over existing queries.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from dashboards import Lang, build_dashboards, render

REPO = Path(__file__).resolve().parents[2]
SITES = REPO / "firmware-config" / "sites"
SCHEMA = json.loads((Path(__file__).parent / "grafana-dashboard.schema.json").read_text())
DATASOURCES = REPO / "dashboards" / "provisioning" / "datasources" / "influxdb.yaml"
# Variables Grafana defines itself.
BUILTIN_VARIABLES = {"timeFilter", "__interval", "__interval_ms", "__timeFilter"}


def _all_json() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{lang}:{d.uid}", json.loads(render(d)))
            for lang in Lang for d in build_dashboards(SITES, lang)]


DASHBOARDS = _all_json()


def _ids() -> list[str]:
    return [name for name, _ in DASHBOARDS]


def test_the_schema_refuses_what_grafana_would_not_load() -> None:
    # The schema must have teeth: a dashboard without panels' grid, or a misspelt key, fails.
    _, dashboard = DASHBOARDS[0]
    validator = jsonschema.Draft7Validator(SCHEMA)
    assert not list(validator.iter_errors(dashboard))
    broken = json.loads(json.dumps(dashboard))
    del broken["panels"][1]["gridPos"]
    broken["panels"][2]["fieldConfig"]["defaults"]["unti"] = "watt"
    broken["schemaVersion"] = "39"
    messages = [e.message for e in validator.iter_errors(broken)]
    assert any("gridPos" in m for m in messages)
    assert any("unti" in m for m in messages)
    assert any("'39'" in m for m in messages)


@pytest.mark.parametrize("name,dashboard", DASHBOARDS, ids=_ids())
def test_dashboard_matches_grafanas_model(name: str, dashboard: dict[str, Any]) -> None:
    jsonschema.validate(dashboard, SCHEMA, cls=jsonschema.Draft7Validator)


@pytest.mark.parametrize("name,dashboard", DASHBOARDS, ids=_ids())
def test_panels_have_unique_ids_and_do_not_overlap(name: str,
                                                   dashboard: dict[str, Any]) -> None:
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine


@pytest.mark.parametrize("name,dashboard", DASHBOARDS, ids=_ids())
def test_queries_use_the_provisioned_datasource_and_defined_variables(
        name: str, dashboard: dict[str, Any]) -> None:
    provisioned = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]
    variables = {v["name"] for v in dashboard["templating"]["list"]} | BUILTIN_VARIABLES
    queries = [{**a["target"], "datasource": a["datasource"]}
               for a in dashboard["annotations"]["list"] if "target" in a]
    for panel in dashboard["panels"]:
        targets = panel.get("targets", [])
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in targets:
            if target["datasource"]["type"] == "prometheus":
                continue  # PromQL: tests/dashboards/test_dash_prometheus.py
            if target["datasource"]["type"] == "__expr__":
                used = set(re.findall(r"\$([A-Z])\b", target["expression"]))
                assert used and used <= set(ref_ids) - {target["refId"]}, panel["title"]
                # The operands are computed for the expression only, not drawn.
                assert all(t.get("hide") for t in targets if t["refId"] in used)
                continue
            queries.append(target)
            group = target["query"].partition(" GROUP BY ")[2]
            for tag in re.findall(r"\$tag_(\w+)", target.get("alias", "")):
                assert f'"{tag}"' in group, f"alias names tag {tag} the query does not group by"
    for item in queries:
        assert item["datasource"] == {"type": provisioned["type"], "uid": provisioned["uid"]}
        used = set(re.findall(r"\$(\w+)", item["query"]))
        assert used <= variables, (used - variables, item["query"])
        assert "INTO" not in item["query"].upper().split()
        assert "INTEGRAL" not in item["query"].upper()


def test_stat_panels_of_today_use_the_sites_time_zone() -> None:
    for name, dashboard in DASHBOARDS:
        if any(p.get("timeFrom") == "now/d" for p in dashboard["panels"]):
            assert dashboard["timezone"] == "Europe/Paris", name
