"""The hourly emissions rollup (`ghg_hourly`) against the indicators, on the real influxd:
for a period of whole hours, its sums per scope are the `/indicators` scope figures, across
a factor-version change, with a refrigerant top-up, and after a factor is superseded.

The feeder series and the hand-computed figures come from two existing cases: 9 hours
answered from raw readings (`cases/indicators/freezer-electricity-factor-changes-at-new-year`)
and 41 days answered from the hourly rollups
(`cases/rollups/freezer-band-and-factor-change-over-41-days`); the top-up is added here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from api.accounting.factors import FactorTable
from api.accounting.gwp import GwpTable
from api.accounting.rollups import EmissionInputs, run_rollups, top_ups_from
from api.sites import SiteRegistry
from api.store import ReadingsStore
from telemetry.influx.client import InfluxClient
from telemetry.influx.lineprotocol import line

REPO = Path(__file__).resolve().parents[2]
REGISTRY = SiteRegistry.load(REPO / "firmware-config" / "sites")
CASES = Path(__file__).parent / "cases"
CASE = yaml.safe_load(
    (CASES / "indicators" / "freezer-electricity-factor-changes-at-new-year" / "case.yaml")
    .read_text())
PARAMS = CASE["request"]  # 2022-12-31T20:00Z → 2023-01-01T05:00Z: 9 whole hours
LONG_CASE = yaml.safe_load(
    (CASES / "rollups" / "freezer-band-and-factor-change-over-41-days" / "case.yaml").read_text())
# 1.5 kg of R290 topped up at 02:30Z; AR4 GWP-100 of R290 = 3 → 4.5 kg CO2e, in hour 02:00Z.
TOP_UP = {"refrigerant": "R290", "mass_kg": 1.5, "at": "2023-01-01T02:30:00Z"}
LEAK_HOUR = "2023-01-01T02:00:00Z"
# Scope 2 is the generation part of ADEME's mix (Base Empreinte: 0.0338 kgCO2e/kWh for 2022,
# 0.0394 for 2023); its upstream part (0.01824, 0.0186) is scope 3, category 3.
EXPECTED: dict[str, Any] = {
    # 30 kWh × 0.0338 (version 2022) + 60 kWh × 0.0394 (version 2023) = 1.014 + 2.364
    "scope2": 3.378,
    "scope2_by_version": {"2022": 1.014, "2023": 2.364},
    # 30 × 0.01824 + 60 × 0.0186 = 0.5472 + 1.116
    "scope3": 1.6632,
    "scope1": 4.5,
    # Version 2023 superseded by 0.1000 kgCO2e/kWh: 1.014 + 60 × 0.1 = 7.014
    "scope2_superseded": 7.014,
}
LONG_EXPECTED: dict[str, Any] = {
    # 744 h × 10 kWh/h × 0.0338 + 240 h × 10 kWh/h × 0.0394 = 251.472 + 94.56
    "scope2": 346.032,
    "scope2_by_version": {"2022": 251.472, "2023": 94.56},
    # 7440 × 0.01824 + 2400 × 0.0186 = 135.7056 + 44.64
    "scope3": 180.3456,
    "scope1": 4.5,  # the same top-up, inside these 41 days too
}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ghg-rollup.sqlite3'}"


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _load_case(influx: InfluxClient, case: dict[str, Any]) -> None:
    """The case's feeder counter only (what emissions rest on)."""
    eq = REGISTRY.get("ariege", case["equipment"])
    assert eq is not None
    sensors = {s.id: s for s in eq.sensors}
    lines = []
    for sensor_id, spec in case["series"].items():
        if sensor_id != "freezer.electric":
            continue
        sensor = sensors[sensor_id]
        tags = {"site": eq.site, "gateway": eq.gateway, "equipment": eq.id,
                "device": sensor.device, "sensor": sensor.id, "unit": sensor.unit,
                "quality": "good"}
        for ramp in spec:
            start, stop = _ms(ramp["ramp_from"]), _ms(ramp["ramp_to"])
            for t in range(start, stop + 1, int(ramp.get("step_s", 60)) * 1000):
                value = ramp["value"] + ramp["slope_per_h"] * (t - start) / 3.6e6
                lines.append(line("readings", tags, {"value": value}, t))
    for i in range(0, len(lines), 5000):
        influx.write(lines[i:i + 5000])


def _rollup(influx: InfluxClient, client: TestClient, factors: FactorTable,
            params: dict[str, str] = PARAMS) -> int:
    emissions = EmissionInputs(factors=factors, gwp=GwpTable.load(), gwp_report="AR4",
                               top_ups=top_ups_from(client.app.state.sessions))  # type: ignore[attr-defined]
    return run_rollups(registry=REGISTRY, store=ReadingsStore(influx),
                       start=datetime.fromisoformat(params["start"]),
                       end=datetime.fromisoformat(params["end"]), around=timedelta(hours=6),
                       max_gap=timedelta(seconds=300), emissions=emissions).points


def _ghg_rows(influx: InfluxClient, params: dict[str, str] = PARAMS) -> list[dict[str, Any]]:
    series = influx.query(
        "SELECT co2e_kg, factor_version, activity, meter FROM ghg_hourly "
        f"WHERE equipment = 'freezer' AND time >= '{params['start']}' "
        f"AND time < '{params['end']}' GROUP BY scope")
    return [{**row, "scope": s.tags["scope"]} for s in series for row in s.rows()]


def _by_scope(rows: list[dict[str, Any]]) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    for row in rows:
        sums[row["scope"]] += row["co2e_kg"]
    return dict(sums)


@pytest.mark.parametrize(("case", "expected", "evidence", "hours"), [
    pytest.param(CASE, EXPECTED, "raw readings", 9, id="9-hours-raw"),
    pytest.param(LONG_CASE, LONG_EXPECTED, "hourly rollups", 984, id="41-days-rollups"),
])
def test_hourly_emissions_sum_to_the_indicator_scopes(
        influx: InfluxClient, make_client: Callable[..., TestClient], case: dict[str, Any],
        expected: dict[str, Any], evidence: str, hours: int) -> None:
    params = case["request"]
    client = make_client(integral_max_gap_s=300, api_gwp_report="AR4")
    _load_case(influx, case)
    created = client.post("/sites/ariege/equipment/freezer/refrigerant-top-ups", json=TOP_UP)
    assert created.status_code == 201, created.text
    _rollup(influx, client, FactorTable.load(), params)
    body = client.get("/sites/ariege/equipment/freezer/indicators", params=params).json()
    assert body["energy"]["evidence"] == evidence
    ghg = body["ghg"]
    assert ghg["scope2_co2e_kg"] == pytest.approx(expected["scope2"], rel=1e-9)
    assert ghg["scope1_co2e_kg"] == pytest.approx(expected["scope1"], rel=1e-9)

    rows = _ghg_rows(influx, params)
    sums = _by_scope(rows)
    assert sums["2"] == pytest.approx(ghg["scope2_co2e_kg"], rel=1e-12)
    assert sums["1"] == pytest.approx(ghg["scope1_co2e_kg"], rel=1e-12)
    assert sums["3"] == pytest.approx(expected["scope3"], rel=1e-9)
    assert sums["3"] == pytest.approx(ghg["scope3_co2e_kg"], rel=1e-12)
    by_version: dict[str, float] = defaultdict(float)
    for row in rows:
        if row["scope"] == "2":
            assert row["activity"] == "electricity" and row["meter"] == "electric_energy"
            by_version[row["factor_version"]] += row["co2e_kg"]
    assert by_version == pytest.approx(expected["scope2_by_version"], rel=1e-12)
    assert len([r for r in rows if r["scope"] == "2"]) == hours  # one point per hour
    [leak] = [r for r in rows if r["scope"] == "1"]
    assert leak["activity"] == "refrigerant_leak"
    assert leak["time"] == _ms(LEAK_HOUR)  # the hour of the top-up
    assert leak["co2e_kg"] == pytest.approx(expected["scope1"], rel=1e-12)


def test_rerun_and_a_superseded_factor_overwrite_the_points(
        influx: InfluxClient, make_client: Callable[..., TestClient]) -> None:
    client = make_client(integral_max_gap_s=300)
    _load_case(influx, CASE)
    shipped = FactorTable.load()
    _rollup(influx, client, shipped)
    _rollup(influx, client, shipped)
    assert _by_scope(_ghg_rows(influx)) == pytest.approx(
        {"2": EXPECTED["scope2"], "3": EXPECTED["scope3"]}, rel=1e-12)
    electricity = shipped.defaults["electricity"]["generation"][0]
    superseded = FactorTable(
        factors=[f.model_copy(update={"value": 0.1})
                 if f.id == electricity and f.version == "2023" else f
                 for f in shipped.factors],
        defaults=shipped.defaults)
    _rollup(influx, client, superseded)
    rows = _ghg_rows(influx)
    assert len(rows) == 18  # the factor is a field: the same points, overwritten
    assert _by_scope(rows) == pytest.approx(
        {"2": EXPECTED["scope2_superseded"], "3": EXPECTED["scope3"]}, rel=1e-12)


def test_a_deleted_top_up_leaves_a_zero_at_the_next_run(
        influx: InfluxClient, make_client: Callable[..., TestClient]) -> None:
    client = make_client(integral_max_gap_s=300, api_gwp_report="AR4")
    _load_case(influx, CASE)
    created = client.post("/sites/ariege/equipment/freezer/refrigerant-top-ups", json=TOP_UP)
    assert created.status_code == 201, created.text
    _rollup(influx, client, FactorTable.load())
    assert _by_scope(_ghg_rows(influx))["1"] == pytest.approx(EXPECTED["scope1"], rel=1e-12)
    deleted = client.delete(
        f"/sites/ariege/equipment/freezer/refrigerant-top-ups/{created.json()['id']}")
    assert deleted.status_code == 204, deleted.text
    _rollup(influx, client, FactorTable.load())
    body = client.get("/sites/ariege/equipment/freezer/indicators", params=PARAMS).json()
    assert body["ghg"]["scope1_co2e_kg"] == 0
    sums = _by_scope(_ghg_rows(influx))
    assert sums == pytest.approx({"1": 0.0, "2": EXPECTED["scope2"], "3": EXPECTED["scope3"]},
                                 rel=1e-12)
