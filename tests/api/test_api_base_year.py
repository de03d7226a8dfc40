"""Base year (ISO 14064-1:2018 §6.4), end to end: readings in the real influxd, hourly rollups,
records through the api, the base year set by an admin, then a corrected factor and an edited
record; the frozen figures never move, the recalculation sits beside them with its reasons.

The figures are checked against the hand arithmetic of tests/api/cases/base-year/case.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from casekit import write_series
from fastapi.testclient import TestClient

from api.access.tokens import TokenRole
from api.accounting.rollups import run_rollups
from api.sites import SiteRegistry
from api.store import ReadingsStore
from telemetry.influx.client import InfluxClient

CASE_DIR = Path(__file__).parent / "cases" / "base-year"
CASE: dict[str, Any] = yaml.safe_load((CASE_DIR / "case.yaml").read_text(encoding="utf-8"))
REPO = Path(__file__).resolve().parents[2]
FACTORS = CASE_DIR / "factors.yaml"
CORRECTED = CASE_DIR / "factors-corrected.yaml"
URL = f"/sites/ariege/equipment/{CASE['equipment']}/base-year"
TOP_UPS = f"/sites/ariege/equipment/{CASE['equipment']}/refrigerant-top-ups"
TOLERANCE = 0.001  # 0.1 %


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    # The relational layer is tested on both databases elsewhere; the base year needs one.
    return f"sqlite:///{tmp_path / 'base-year.sqlite3'}"


def _fill(influx: InfluxClient, *, series: dict[str, Any] = CASE["series"],
          start: str = "2025-03-09T23:00:00Z", end: str = "2025-03-13T01:00:00Z") -> None:
    """Readings into influxd, then the hourly rollups a year's figures are summed from."""
    registry = SiteRegistry.load(REPO / "firmware-config" / "sites")
    write_series(influx, registry, CASE["equipment"], series)
    run_rollups(registry=registry, store=ReadingsStore(influx), start=_at(start), end=_at(end),
                around=timedelta(hours=6), max_gap=timedelta(minutes=5))


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _wrong(figures: dict[str, float], expected: dict[str, float]) -> dict[str, Any]:
    return {k: (figures.get(k), v) for k, v in expected.items()
            if figures.get(k) is None or abs(figures[k] - v) > TOLERANCE * abs(v)}


def test_base_year_recalculated_after_a_corrected_factor_and_an_edited_record(
        influx: InfluxClient, make_client: Callable[..., TestClient]) -> None:
    _fill(influx)
    admin = make_client(api_factor_files=(FACTORS,))
    created = admin.post(TOP_UPS, json=CASE["top_up"])
    assert created.status_code == 201, created.text
    top_up = created.json()

    assert admin.get(URL).status_code == 404  # nothing set yet
    response = admin.put(URL, json={"year": CASE["year"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["year"] == 2025 and body["start"].startswith("2024-12-31T23:00")
    frozen = body["frozen"]
    assert not _wrong(frozen["figures"], CASE["frozen"]), _wrong(frozen["figures"],
                                                                 CASE["frozen"])
    assert ["base-year-case-grid", "2025"] in frozen["factors"]
    assert frozen["records"]["refrigerant_top_ups"][str(top_up["id"])]["version"] == 1
    # Read back at once: the same year computed again has not moved.
    again = admin.get(URL).json()
    assert again["changes"] == [] and again["reasons"] == []
    assert again["frozen"] == frozen

    # 2. A corrected grid factor (a new version valid for 2025), loaded by the api.
    corrected = make_client(api_factor_files=(FACTORS, CORRECTED))
    body = corrected.get(URL).json()
    assert body["frozen"] == frozen  # never overwritten
    figures = body["recalculated"]["figures"]
    assert not _wrong(figures, CASE["after_factor_correction"]), _wrong(
        figures, CASE["after_factor_correction"])
    assert [(r["kind"], r["subject"], r["frozen"], r["current"]) for r in body["reasons"]] == [
        ("factor", "base-year-case-grid", "2025", "2025-r1")]
    moved = {c["figure"]: c for c in body["changes"]}
    location = moved["ghg.scope2_location_co2e_kg"]
    assert location["frozen"] == pytest.approx(43.2, rel=TOLERANCE)
    assert location["recalculated"] == pytest.approx(46.8, rel=TOLERANCE)
    assert location["change_pct"] == pytest.approx(100 * (46.8 - 43.2) / 43.2, rel=TOLERANCE)
    assert location["reasons"] == ["factor base-year-case-grid: version 2025 → 2025-r1"]
    # Only figures that sum the grid factor moved: not scope 1, market-based or upstream.
    for key in ("ghg.scope1_co2e_kg", "ghg.scope2_market_co2e_kg", "ghg.scope3_co2e_kg",
                "energy.electricity_kwh"):
        assert key not in moved, key

    # 3. The top-up corrected through the api (0.4 → 0.5 kg, version 1 → 2).
    edit = {**CASE["top_up"], "mass_kg": CASE["corrected_mass_kg"], "version": 1}
    edited = corrected.put(f"{TOP_UPS}/{top_up['id']}", json=edit)
    assert edited.status_code == 200, edited.text
    body = corrected.get(URL).json()
    assert body["frozen"] == frozen
    figures = body["recalculated"]["figures"]
    assert not _wrong(figures, CASE["after_record_edit"]), _wrong(figures,
                                                                  CASE["after_record_edit"])
    edit_reason = f"refrigerant_top_ups {top_up['id']}: edited, version 1 → 2"
    assert edit_reason in [r["text"] for r in body["reasons"]]
    moved = {c["figure"]: c for c in body["changes"]}
    assert moved["ghg.scope1_co2e_kg"]["frozen"] == pytest.approx(520.0, rel=TOLERANCE)
    assert moved["ghg.scope1_co2e_kg"]["recalculated"] == pytest.approx(650.0, rel=TOLERANCE)
    assert moved["ghg.scope1_co2e_kg"]["reasons"] == [edit_reason]
    assert moved["ghg.scope2_location_co2e_kg"]["reasons"] == [
        "factor base-year-case-grid: version 2025 → 2025-r1"]

    # 4. An admin records the recalculation: appended, the original still as frozen.
    recorded = corrected.post(f"{URL}/recalculations")
    assert recorded.status_code == 201, recorded.text
    body = corrected.get(URL).json()
    assert body["frozen"] == frozen
    [entry] = body["recalculations"]
    assert entry["kind"] == "recalculation" and edit_reason in [
        r["text"] for r in entry["reasons"]]
    assert entry["figures"]["figures"]["ghg.scope1_co2e_kg"] == pytest.approx(650.0,
                                                                              rel=TOLERANCE)

    # 5. The top-up voided, and one more day of readings found for 2025 (1 April, 24 h at
    #    10 kWh/h = 240 kWh): energy 720 + 240 = 960 kWh, scope 1 = 0 (no leak left),
    #    scope 2 location = 960 × 0.0650 = 62.400 kgCO2e.
    voided = corrected.delete(f"{TOP_UPS}/{top_up['id']}", params={"reason": "wrong machine"})
    assert voided.status_code == 204, voided.text
    _fill(influx, series={"freezer.electric": [
        {"ramp_from": "2025-04-01T00:00:00Z", "ramp_to": "2025-04-02T00:00:00Z",
         "value": 9000, "slope_per_h": 10, "step_s": 300}]},
        start="2025-03-31T23:00:00Z", end="2025-04-02T01:00:00Z")
    body = corrected.get(URL).json()
    assert body["frozen"] == frozen
    figures = body["recalculated"]["figures"]
    assert figures["energy.electricity_kwh"] == pytest.approx(960.0, rel=TOLERANCE)
    assert figures["ghg.scope1_co2e_kg"] == pytest.approx(0.0, abs=1e-9)
    assert figures["ghg.scope2_location_co2e_kg"] == pytest.approx(62.4, rel=TOLERANCE)
    moved = {c["figure"]: c for c in body["changes"]}
    void_reason = f"refrigerant_top_ups {top_up['id']}: voided since the base year was set"
    readings = "readings of electricity: 720 kWh → 960 kWh"
    assert moved["energy.electricity_kwh"]["reasons"] == [readings]
    assert void_reason in moved["ghg.scope1_co2e_kg"]["reasons"]
    assert set(moved["ghg.scope2_location_co2e_kg"]["reasons"]) == {
        "factor base-year-case-grid: version 2025 → 2025-r1", readings}


def test_base_year_access_and_refusals(influx: InfluxClient,
                                       make_client: Callable[..., TestClient]) -> None:
    _fill(influx)
    admin = make_client(api_factor_files=(FACTORS,))
    operator = make_client(role=TokenRole.OPERATOR, api_factor_files=(FACTORS,))
    evaluator = make_client(role=TokenRole.EVALUATOR, api_factor_files=(FACTORS,))
    elsewhere = make_client(role=TokenRole.ADMIN, site="elsewhere", api_factor_files=(FACTORS,))
    assert operator.put(URL, json={"year": 2025}).status_code == 403
    assert evaluator.put(URL, json={"year": 2025}).status_code == 403
    assert admin.put(URL, json={"year": 2099}).status_code == 422  # not over
    assert admin.put(URL, json={"year": 2025}).status_code == 200
    assert admin.put(URL, json={"year": 2025}).status_code == 409  # frozen: no overwrite
    for reader in (operator, evaluator):
        got = reader.get(URL)
        assert got.status_code == 200 and got.json()["year"] == 2025
    assert elsewhere.get(URL).status_code == 404
    assert operator.post(f"{URL}/recalculations").status_code == 403
    # Another year replaces the base year; the former one is kept in the list.
    replaced = admin.put(URL, json={"year": 2024})
    assert replaced.status_code == 200, replaced.text
    [former] = replaced.json()["recalculations"]
    assert former["kind"] == "base year changed" and former["former_year"] == 2025
    assert former["former_frozen"]["figures"]["energy.electricity_kwh"] == pytest.approx(720.0)
