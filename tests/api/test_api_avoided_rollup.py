"""The avoided-emissions rollup (`avoided_batches`) against the per-batch indicators, on the
real influxd and the real records database: one point per batch ending in the rolled-up window
and baseline of its equipment's kind, at the batch's end, equal to what
`GET …/batches/{id}/indicators?baseline=…` answers; a rerun overwrites the same points; a
deleted batch's point is zeroed (batch_id 0) at the next run.

The feeder series is the 9-hour freezer case of test_api_ghg_rollup (10 kWh/h; ADEME
electricity, generation part, 0.0338 kgCO2e/kWh for 2022, 0.0394 from local midnight
2022-12-31T23:00Z).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.accounting.factors import FactorTable
from api.accounting.gwp import GwpTable
from api.accounting.rollups import EmissionInputs, run_rollups, top_ups_from
from api.store import ReadingsStore
from telemetry.influx.client import InfluxClient

from .test_api_ghg_rollup import CASE, PARAMS, REGISTRY, _load_case, _ms

FREEZER = "/sites/ariege/equipment/freezer"
# 0.1 kWh of electricity per kg frozen, at the shipped electricity factor.
BASELINE = {"name": "freezer-ref", "equipment_kind": "freezer", "output": "kg_frozen",
            "activity_per_output": 0.1, "activity_unit": "kWh",
            "factor_id": "electricity-fr-mix-generation",
            "description": "reference freezer, 0.1 kWh per kg frozen", "source": "test"}
# A dryer's baseline: not applicable to the freezer, so no point.
DRYER_BASELINE = {"name": "fuel-oil-dehydrator", "equipment_kind": "dryer",
                  "output": "t_dry_matter", "activity_per_output": 400, "activity_unit": "L",
                  "factor_id": "fuel-oil-combustion-l",
                  "description": "industrial dehydration",
                  "source": "docs/sources.md#baseline-lucerne-historical"}
BATCHES = [
    # 20:00Z → 22:00Z (local 31 Dec): actual 20 kWh × 0.0338 = 0.676; baseline 500 kg × 0.1
    # kWh/kg × 0.0338 = 1.69; avoided 1.69 − 0.676 = 1.014 (the generation part of ADEME's
    # mix: location-based scope 2).
    {"product": "a", "started_at": "2022-12-31T20:00:00Z", "ended_at": "2022-12-31T22:00:00Z",
     "mass_in_kg": 500},
    # 01:00Z → 04:00Z (local 1 Jan): actual 30 kWh × 0.0394 = 1.182; baseline 600 × 0.1 ×
    # 0.0394 = 2.364; avoided 2.364 − 1.182 = 1.182.
    {"product": "b", "started_at": "2023-01-01T01:00:00Z", "ended_at": "2023-01-01T04:00:00Z",
     "mass_in_kg": 600},
    # Ends at 06:00Z, after the window (→ 05:00Z): not this run's.
    {"product": "c", "started_at": "2023-01-01T04:30:00Z", "ended_at": "2023-01-01T06:00:00Z",
     "mass_in_kg": 100},
]
EXPECTED = {"2022-12-31T22:00:00Z": (1.014, 1.69, 0.676, 500.0),
            "2023-01-01T04:00:00Z": (1.182, 2.364, 1.182, 600.0)}


@pytest.fixture
def database_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path / 'avoided-rollup.sqlite3'}"


def _rollup(influx: InfluxClient, client: TestClient) -> None:
    sessions = client.app.state.sessions  # type: ignore[attr-defined]
    emissions = EmissionInputs(factors=FactorTable.load(), gwp=GwpTable.load(),
                               gwp_report="AR4", top_ups=top_ups_from(sessions),
                               records=sessions)
    run_rollups(registry=REGISTRY, store=ReadingsStore(influx),
                start=datetime.fromisoformat(PARAMS["start"]),
                end=datetime.fromisoformat(PARAMS["end"]), around=timedelta(hours=6),
                max_gap=timedelta(seconds=300), emissions=emissions)


def _points(influx: InfluxClient) -> dict[int, dict[str, Any]]:
    series = influx.query('SELECT * FROM "avoided_batches" GROUP BY "baseline", "equipment"')
    out = {}
    for s in series:
        assert s.tags == {"baseline": "freezer-ref", "equipment": "freezer"}
        for row in s.rows():
            out[row["time"]] = row
    return out


def _setup(influx: InfluxClient, client: TestClient) -> list[int]:
    _load_case(influx, CASE)
    for baseline in (BASELINE, DRYER_BASELINE):
        assert client.post("/baselines", json=baseline).status_code == 201
    ids = []
    for batch in BATCHES:
        created = client.post(f"{FREEZER}/batches", json=batch)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    return ids


def test_batch_points_equal_the_batch_indicators_and_reruns_overwrite(
        influx: InfluxClient, make_client: Callable[..., TestClient]) -> None:
    client = make_client(integral_max_gap_s=300)
    ids = _setup(influx, client)
    _rollup(influx, client)
    points = _points(influx)
    assert sorted(points) == sorted(_ms(t) for t in EXPECTED)
    for (at, (avoided, baseline, actual, kg)), batch_id in zip(EXPECTED.items(), ids,
                                                               strict=False):
        row = points[_ms(at)]
        assert row["batch_id"] == batch_id
        assert row["avoided_co2e_kg"] == pytest.approx(avoided, rel=1e-9)
        assert row["baseline_co2e_kg"] == pytest.approx(baseline, rel=1e-9)
        assert row["actual_co2e_kg"] == pytest.approx(actual, rel=1e-9)
        assert row["output_quantity"] == kg and row["output"] == "kg_frozen"
        body = client.get(f"{FREEZER}/batches/{batch_id}/indicators",
                          params={"baseline": "freezer-ref"})
        assert body.status_code == 200, body.text
        [figure] = body.json()["ghg"]["avoided"]
        assert row["avoided_co2e_kg"] == pytest.approx(figure["avoided_co2e_kg"], rel=1e-12)
    _rollup(influx, client)
    assert _points(influx) == points  # same points, same values


def test_a_deleted_batch_leaves_a_zero_at_the_next_run(
        influx: InfluxClient, make_client: Callable[..., TestClient]) -> None:
    client = make_client(integral_max_gap_s=300)
    ids = _setup(influx, client)
    _rollup(influx, client)
    assert client.delete(f"{FREEZER}/batches/{ids[1]}").status_code == 204
    _rollup(influx, client)
    points = _points(influx)
    gone = points[_ms("2023-01-01T04:00:00Z")]
    assert (gone["batch_id"], gone["avoided_co2e_kg"], gone["baseline_co2e_kg"],
            gone["actual_co2e_kg"], gone["output_quantity"]) == (0, 0.0, 0.0, 0.0, 0.0)
    kept = points[_ms("2022-12-31T22:00:00Z")]
    assert kept["batch_id"] == ids[0]
    assert kept["avoided_co2e_kg"] == pytest.approx(1.014, rel=1e-9)
    assert sum(p["avoided_co2e_kg"] for p in points.values()) == pytest.approx(1.014, rel=1e-9)
