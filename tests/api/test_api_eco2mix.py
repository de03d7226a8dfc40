"""RTE éCO2mix intensity: both file formats, and the consumption-weighted figure beside
scope 2, through the real influxd."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.access.tokens import TokenRole
from api.accounting.eco2mix import Eco2mixError, parse, parse_odre_json, parse_tsv
from api.accounting.rollups import run_rollups
from api.sites import SiteRegistry
from api.store import ReadingsStore
from telemetry.influx.client import InfluxClient
from telemetry.influx.lineprotocol import line

FILES = Path(__file__).parent / "cases" / "eco2mix"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'eco2mix.sqlite3'}"


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def test_the_rte_download_in_local_time_with_the_doubled_hour() -> None:
    points = parse_tsv((FILES / "rte-download.tsv").read_bytes())
    assert len(points) == 14  # 12 quarter hours + the doubled 02:00; ND and trailer skipped
    assert _utc(points[0].time_ms) == datetime(2026, 4, 1, 6, tzinfo=UTC)  # 08:00 CEST
    assert [(_utc(p.time_ms).hour, p.co2_g_per_kwh) for p in points[-2:]] == [(0, 15.0),
                                                                               (1, 17.0)]
    with pytest.raises(Eco2mixError, match="taux de co2"):
        parse_tsv("Date\tHeures\n2026-01-01\t00:00\n".encode("latin-1"))


def test_the_odre_export() -> None:
    points = parse((FILES / "odre.json").read_bytes())
    # The naive time and the null intensity are skipped, not guessed.
    assert [(_utc(p.time_ms).hour, p.co2_g_per_kwh) for p in points] == [
        (6, 23.0), (7, 30.0), (8, 10.0)]
    with pytest.raises(Eco2mixError):
        parse_odre_json(b'{"results": []}')


def test_weighted_intensity_sits_beside_scope_2(
        influx: InfluxClient, make_client: Callable[..., TestClient]) -> None:
    admin = make_client()
    operator = make_client(role=TokenRole.OPERATOR, site="ariege")
    data = (FILES / "rte-download.tsv").read_bytes()
    assert operator.post("/grid-intensity", content=data).status_code == 403
    imported = admin.post("/grid-intensity", content=data,
                          headers={"Content-Type": "text/tab-separated-values"})
    assert imported.status_code == 200 and imported.json()["points"] == 14
    assert admin.post("/grid-intensity", content=b"nothing useful").status_code == 422
    # Grid import of 2, 4 then 6 kWh in the three hours from 06:00Z.
    start = datetime(2026, 4, 1, 6, tzinfo=UTC)
    first = int(start.timestamp() * 1000)
    values, total = [], 0.0
    for minute in range(0, 181, 10):
        values.append((first + minute * 60_000, 500 + total))
        total += {0: 2, 1: 4, 2: 6}.get(minute // 60, 0) / 6
    influx.write([line("readings", {"site": "ariege", "equipment": "dryer",
                                    "sensor": "dryer.grid_import", "unit": "kWh",
                                    "quality": "good"}, {"value": v}, t) for t, v in values])
    run_rollups(registry=SiteRegistry.load(REPO / "firmware-config" / "sites"),
                store=ReadingsStore(influx), start=start, end=start + timedelta(hours=3),
                around=timedelta(hours=6), max_gap=timedelta(minutes=15))
    body = admin.get("/sites/ariege/equipment/dryer/indicators", params={
        "start": start.isoformat(), "end": (start + timedelta(hours=3)).isoformat()}).json()
    ghg = body["ghg"]
    # Location-based scope 2 is untouched: 12 kWh × 0.0394 (generation part of ADEME's mix).
    assert ghg["scope2_co2e_kg"] == pytest.approx(12 * 0.0394)
    weighted = ghg["grid_intensity"]
    # (2 × 23 + 4 × 30 + 6 × 10) / 12 g/kWh, hourly means of the quarter hours
    assert weighted["weighted_g_per_kwh"] == pytest.approx(226 / 12)
    assert weighted["direct_production_co2e_kg"] == pytest.approx(0.226)
    assert weighted["hours_matched"] == 3 and "not scope 2" in weighted["label"]
