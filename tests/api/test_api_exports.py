"""Exports: the same figures as the JSON indicators, each row with its provenance."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from telemetry.influx.client import InfluxClient
from telemetry.influx.lineprotocol import line

DAY = {"period": "day", "date": "2026-06-15"}
START_MS = 1_781_474_400_000  # 2026-06-14T22:00Z, local midnight in Paris


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'exports.sqlite3'}"


def _write(influx: InfluxClient) -> None:
    lines = []
    for sensor, equipment, per_hour in (("dryer.grid_import", "dryer", 2.0),
                                        ("dryer.electric", "dryer", 5.0),
                                        ("freezer.electric", "freezer", 3.0)):
        for hour in range(25):
            lines.append(line("readings", {"site": "ariege", "equipment": equipment,
                                           "sensor": sensor, "unit": "kWh",
                                           "quality": "good"},
                              {"value": 100 + per_hour * hour}, START_MS + hour * 3_600_000))
    influx.write(lines)


def test_csv_xlsx_parquet_carry_the_json_figures_and_provenance(
        influx: InfluxClient, client: TestClient) -> None:
    _write(influx)
    dryer = client.get("/sites/ariege/equipment/dryer/indicators", params=DAY).json()
    scope2 = dryer["ghg"]["scope2_co2e_kg"]
    # the generation part of ADEME's 2023 mix (location-based scope 2)
    assert scope2 == pytest.approx(48.0 * 0.0394)
    params = {**DAY, "equipment": ["dryer", "freezer"]}

    response = client.get("/sites/ariege/exports/indicators.csv", params=params)
    assert response.status_code == 200, response.text
    assert "dynamo-ariege-20260614T2200Z-20260615T2200Z.csv" in (
        response.headers["content-disposition"])
    rows = list(csv.DictReader(io.StringIO(response.text)))
    by_key = {(r["equipment"], r["indicator"]): r for r in rows}
    assert float(by_key[("dryer", "ghg.scope2")]["value"]) == pytest.approx(scope2)
    line_row = by_key[("dryer", "ghg.scope2.grid_import_energy")]
    assert (line_row["factor_id"], line_row["factor_version"]) == (
        "electricity-fr-mix-generation", "2023")
    assert "ADEME" in line_row["factor_source"]
    assert (line_row["scope"], line_row["iso_category"], line_row["scope2_method"]) == (
        "2", "2", "location")
    assert float(line_row["uncertainty_kg"]) > 0
    energy = by_key[("freezer", "energy.electricity")]
    assert (float(energy["value"]), energy["method"], energy["sensors"]) == (
        72.0, "counter_difference", "freezer.electric")
    assert by_key[("dryer", "dryer.total_energy_kwh")]["unit"] == "kWh"

    xlsx = client.get("/sites/ariege/exports/indicators.xlsx", params=params)
    book = load_workbook(io.BytesIO(xlsx.content))
    sheet = [list(r) for r in book["indicators"].iter_rows(values_only=True)]
    header = sheet[0]
    assert len(sheet) - 1 == len(rows)
    assert {(r[header.index("equipment")], r[header.index("indicator")]): r[header.index("value")]
            for r in sheet[1:]}[("dryer", "ghg.scope2")] == pytest.approx(scope2)
    about = dict(book["provenance"].iter_rows(values_only=True))
    assert about["gwp_report"] == "AR5" and "electricity-fr-mix-generation" in about["factors"]

    parquet = client.get("/sites/ariege/exports/indicators.parquet", params=params)
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == len(rows)
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    assert json.loads(meta["dynamo.factors"])[0]["id"] == "electricity-fr-mix-generation"
    values = {(e, i): v for e, i, v in zip(table["equipment"].to_pylist(),
                                          table["indicator"].to_pylist(),
                                          table["value"].to_pylist(), strict=True)}
    assert values[("freezer", "energy.electricity")] == pytest.approx(72.0)

    assert client.get("/sites/ariege/exports/indicators.pdf", params=DAY).status_code == 422
    assert client.get("/sites/ariege/exports/indicators.csv",
                      params={**DAY, "equipment": "x' OR 1=1"}).status_code == 422
    assert client.get("/sites/nowhere/exports/indicators.csv", params=DAY).status_code == 404
