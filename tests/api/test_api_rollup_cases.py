"""Long periods (over 31 days) against hand-computed cases: the series go into the real
influxd, the hourly rollups are built from them with the real rollup code, and the figures
come back over HTTP from the rollups alone.

A case folder under `cases/rollups/` holds `case.yaml`: equipment, request (`start`, `end`,
whole hours), series (as in `cases/indicators/`), expected figures with the arithmetic in
comments. Expected keys are paths into the response: `a.b[key=value].c`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from casekit import mismatches, write_series
from fastapi.testclient import TestClient

from api.accounting.rollups import run_rollups
from api.sites import SiteRegistry
from api.store import ReadingsStore
from telemetry.influx.client import InfluxClient

CASES = sorted((Path(__file__).parent / "cases" / "rollups").glob("*/case.yaml"))
REPO = Path(__file__).resolve().parents[2]
REGISTRY = SiteRegistry.load(REPO / "firmware-config" / "sites")
_FREEZER_CASE = Path(__file__).parent / "cases" / "rollups" / (
    "freezer-band-and-factor-change-over-41-days") / "case.yaml"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'rollup-cases.sqlite3'}"


def _load(influx: InfluxClient, case: dict[str, Any]) -> None:
    write_series(influx, REGISTRY, case["equipment"], case["series"])


def _rollup(influx: InfluxClient, case: dict[str, Any],
            bands: dict[str, tuple[float, float]] | None = None) -> None:
    run_rollups(registry=REGISTRY, store=ReadingsStore(influx),
                start=datetime.fromisoformat(case["request"]["start"]),
                end=datetime.fromisoformat(case["request"]["end"]),
                around=timedelta(hours=6), max_gap=timedelta(seconds=300), bands=bands)


@pytest.mark.parametrize("case_file", CASES, ids=[c.parent.name for c in CASES])
def test_rollup_case(case_file: Path, influx: InfluxClient,
                     make_client: Callable[..., TestClient]) -> None:
    case = yaml.safe_load(case_file.read_text())
    client = make_client(integral_max_gap_s=300)
    _load(influx, case)
    _rollup(influx, case)
    response = client.get(f"/sites/ariege/equipment/{case['equipment']}/indicators",
                          params=case["request"])
    assert response.status_code == 200, response.text
    body = response.json()
    wrong = mismatches(body, case["expected"], tolerance=1e-9)
    assert not wrong, f"actual vs expected: {wrong}\nnotes: {body['notes']}"


def test_band_rollups_of_another_band_are_not_used(
        influx: InfluxClient, make_client: Callable[..., TestClient]) -> None:
    """Rollups built against a band the api no longer uses give no figure and say why;
    rebuilding them against the configured band gives it."""
    case = yaml.safe_load(_FREEZER_CASE.read_text())
    client = make_client()
    _load(influx, case)
    url = "/sites/ariege/equipment/freezer/indicators"
    before = client.get(url, params=case["request"]).json()
    assert before["freezer"]["share_of_time_in_band"] is None
    _rollup(influx, case, bands={"cabinet_air_temp": (-25.0, -18.0)})
    other = client.get(url, params=case["request"]).json()
    assert other["freezer"]["share_of_time_in_band"] is None
    assert any("time in band" in note and "dynamo api rollup" in note
               for note in other["notes"]), other["notes"]
    _rollup(influx, case)
    body = client.get(url, params=case["request"]).json()
    assert body["freezer"]["share_of_time_in_band"] == pytest.approx(970 / 978)
    assert not any("time in band" in note for note in body["notes"])


def test_export_names_each_part_of_a_split_activity(
        influx: InfluxClient, make_client: Callable[..., TestClient]) -> None:
    """The CSV export keeps one row per factor version, saying which part of the period and
    which share of the activity it covers."""
    case = yaml.safe_load(_FREEZER_CASE.read_text())
    client = make_client()
    _load(influx, case)
    _rollup(influx, case)
    response = client.get("/sites/ariege/exports/indicators.csv",
                          params={**case["request"], "equipment": ["freezer"]})
    assert response.status_code == 200, response.text
    rows = [row for row in csv.DictReader(io.StringIO(response.text))
            if row["indicator"] == "ghg.scope2.electric_energy"]
    assert sorted((row["factor_version"], float(row["value"])) for row in rows) == [
        ("2022", pytest.approx(251.472)), ("2023", pytest.approx(94.56))]
    methods = {row["factor_version"]: row["method"] for row in rows}
    assert "2022-11-30T23:00:00+00:00/2022-12-31T23:00:00+00:00 (75.6% of" in methods["2022"]
    assert "(24.4% of the activity)" in methods["2023"]
