"""Indicators against hand-computed cases (one folder per case): the series go into the real
influxd, the records through the api into a real database, and the figures come back over HTTP.

A case folder holds `case.yaml` (equipment, request, series, records, expected figures with the
arithmetic in comments) and optionally `factors.yaml`, the evaluation team's own factors.
Expected keys are paths into the response: `a.b[key=value].c`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from casekit import mismatches, write_series
from fastapi.testclient import TestClient

from api.sites import SiteRegistry
from telemetry.influx.client import InfluxClient

CASES = sorted((Path(__file__).parent / "cases" / "indicators").glob("*/case.yaml"))
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    # The relational layer is tested on both databases elsewhere; cases need one.
    return f"sqlite:///{tmp_path / 'cases.sqlite3'}"


@pytest.mark.parametrize("case_file", CASES, ids=[c.parent.name for c in CASES])
def test_indicator_case(case_file: Path, influx: InfluxClient,
                        make_client: Callable[..., TestClient]) -> None:
    case = yaml.safe_load(case_file.read_text())
    factor_files = (case_file.parent / case["factors"],) if "factors" in case else ()
    client = make_client(api_factor_files=factor_files)
    write_series(influx, SiteRegistry.load(REPO / "firmware-config" / "sites"),
                 case["equipment"], case["series"])
    base = f"/sites/ariege/equipment/{case['equipment']}"
    routes = {"campaigns": f"{base}/campaigns", "batches": f"{base}/batches",
              "refrigerant_top_ups": f"{base}/refrigerant-top-ups",
              "material_lots": f"{base}/material-lots", "baselines": "/baselines"}
    if "calendar" in case:  # the line's shift calendar, set as an admin would
        response = client.put(f"{base}/calendar", json={
            "calendar": case["calendar"], "version": 0, "reason": "case"})
        assert response.status_code == 200, response.text
    for kind, rows in case.get("records", {}).items():
        for row in rows:
            response = client.post(routes[kind], json=row)
            assert response.status_code == 201, response.text
    response = client.get(f"{base}/indicators", params=case["request"])
    assert response.status_code == 200, response.text
    body = response.json()
    _check(body, case["expected"], "period")
    for route, expected in case.get("also", {}).items():
        response = client.get(f"{base}/{route}", params={
            k: v for k, v in case["request"].items()
            if k in ("baseline", "nominal_rate_upm", "gwp")})
        assert response.status_code == 200, (route, response.text)
        _check(response.json(), expected, route)


def _check(body: dict[str, Any], expected: dict[str, Any], what: str) -> None:
    wrong = mismatches(body, expected, tolerance=1e-6)
    assert not wrong, f"{what}: actual vs expected: {wrong}\nnotes: {body['notes']}"


def test_cases_cover_what_the_issue_asks() -> None:
    text = " ".join(c.read_text() for c in CASES)
    for needle in ("resets: 1", "clocks go forward", "hole in the data", "refrigerant_top_ups",
                   "power_integral", "planned_downtime", "kind: closed", "unplanned stop"):
        assert needle in text, needle
