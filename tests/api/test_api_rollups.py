"""Hourly rollups written back to the real influxd: sums equal the raw figures, runs are
idempotent, late data is taken in, and long periods are reported from rollups alone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.accounting.rollups import run_rollups
from api.sites import SiteRegistry
from api.store import ReadingsStore
from telemetry.influx.client import InfluxClient
from telemetry.influx.lineprotocol import line

REPO = Path(__file__).resolve().parents[2]
REGISTRY = SiteRegistry.load(REPO / "firmware-config" / "sites")
MIN = 60_000
HOUR = 3_600_000


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'rollups.sqlite3'}"


def _reading(equipment: str, sensor: str, unit: str, t: int, value: float) -> str:
    return line("readings", {"site": "ariege", "equipment": equipment, "sensor": sensor,
                             "unit": unit, "quality": "good", "gateway": f"{equipment}-gw"},
                {"value": value}, t)


def _dryer_hours(start_ms: int, hours: int, *, skip: range = range(0)) -> list[str]:
    """Fan feeder counter rising 6 kWh/h, a 3 kW net grid import, fan state on: each minute."""
    lines = []
    for minute in range(hours * 60 + 1):
        if minute in skip:
            continue
        t = start_ms + minute * MIN
        lines += [_reading("dryer", "dryer.electric", "kWh", t, 100 + minute / 10),
                  _reading("dryer", "dryer.grid_power", "W", t, 3000.0),
                  _reading("dryer", "dryer.fan_running", "", t, 1.0)]
    return lines


def _rollup(influx: InfluxClient, start: datetime, end: datetime,
            max_gap: timedelta = timedelta(minutes=5)) -> int:
    return run_rollups(registry=REGISTRY, store=ReadingsStore(influx), start=start, end=end,
                       around=timedelta(hours=6), max_gap=max_gap).points


def _hourly(influx: InfluxClient, source: str) -> list[float]:
    series = influx.query(f"SELECT energy_kwh FROM energy_hourly WHERE source = '{source}'")
    return [row["energy_kwh"] for s in series for row in s.rows()]


def test_rollups_sum_to_the_raw_figure_and_rerun_idempotently(
        influx: InfluxClient, client: TestClient) -> None:
    start = datetime(2026, 4, 1, 6, tzinfo=UTC)
    # Minutes 70–99 arrive late (a gateway's spool flushed after an outage).
    influx.write(_dryer_hours(int(start.timestamp() * 1000), 4, skip=range(70, 100)))
    end = start + timedelta(hours=4)
    _rollup(influx, start, end)
    assert _hourly(influx, "electricity") == pytest.approx([6.0] * 4)
    # A hole longer than the gap limit is not integrated: in hour 2 only minutes 60→69 and
    # 100→120 are, 29 minutes at 3 kW.
    assert _hourly(influx, "grid_import") == pytest.approx([3.0, 3 * 29 / 60, 3.0, 3.0])
    points = influx.query("SELECT count(energy_kwh) FROM energy_hourly")[0].values[0][1]
    influx.write(_dryer_hours(int(start.timestamp() * 1000), 4))  # the late data
    _rollup(influx, start, end)
    _rollup(influx, start, end)
    assert _hourly(influx, "grid_import") == pytest.approx([3.0] * 4)
    assert influx.query("SELECT count(energy_kwh) FROM energy_hourly")[0].values[0][1] == points
    fan = influx.query("SELECT sum(seconds) FROM state_hourly WHERE sensor = 'dryer.fan_running'"
                       " AND state = '1'")
    assert fan[0].values[0][1] == pytest.approx(4 * 3600)
    raw = client.get("/sites/ariege/equipment/dryer/energy-by-source",
                     params={"start": start.isoformat(), "end": end.isoformat()}).json()
    [electricity] = [s for s in raw["sources"] if s["source"] == "electricity"]
    assert electricity["energy_kwh"] == pytest.approx(sum(_hourly(influx, "electricity")))


def test_long_periods_come_from_rollups_only(influx: InfluxClient, client: TestClient) -> None:
    start = datetime(2025, 12, 31, 23, tzinfo=UTC)  # 1 January 2026, Paris
    end = datetime(2026, 2, 28, 23, tzinfo=UTC)  # 1 March 2026, Paris
    first = int(start.timestamp() * 1000)
    tenth = 10 * MIN
    steps = int((end - start).total_seconds() * 1000) // tenth
    # 1 kWh every 10 minutes for 59 days: 6 kWh/h, 8496 kWh.
    influx.write([_reading("dryer", "dryer.electric", "kWh", first + i * tenth, float(i))
                  for i in range(steps + 1)])
    params = {"start": start.isoformat(), "end": end.isoformat()}
    before = client.get("/sites/ariege/equipment/dryer/energy-by-source", params=params).json()
    assert before["evidence"] == "hourly rollups" and "electricity" in before["missing"]
    _rollup(influx, start, end, max_gap=timedelta(minutes=15))
    body = client.get("/sites/ariege/equipment/dryer/indicators", params=params).json()
    assert body["energy"]["evidence"] == "hourly rollups"
    [electricity] = [s for s in body["energy"]["sources"] if s["source"] == "electricity"]
    assert electricity["energy_kwh"] == pytest.approx(8496.0)
    assert electricity["method"] == "counter_difference" and electricity["coverage"] == 1.0
    # Scope 2 with the fan feeder as the purchased electricity (no grid meter data).
    # (the generation part of ADEME's 2023 mix, 0.0394 kgCO2e/kWh)
    assert body["ghg"]["scope2_co2e_kg"] == pytest.approx(8496.0 * 0.0394)
    unaligned = client.get("/sites/ariege/equipment/dryer/indicators",
                           params={"start": "2026-01-01T00:30:00Z", "end": end.isoformat()})
    assert unaligned.status_code == 422 and "whole hours" in unaligned.text


def test_cli_and_the_api_process_keep_rollups(
        influx: InfluxClient, make_client: Callable[..., TestClient],
        api_settings: object) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(hours=2)
    influx.write(_dryer_hours(int(start.timestamp() * 1000), 2))
    env = {**os.environ, "DYNAMO_INFLUX_URL": influx.url, "DYNAMO_INFLUX_DB": influx.database,
           "DYNAMO_SITE_CONFIGS": str(REPO / "firmware-config" / "sites")}
    done = subprocess.run([sys.executable, "-m", "dynamo", "api", "rollup", "--start",
                           "2026-04-01T00:00:00Z", "--end", "2026-04-01T02:00:00Z"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "2 hours" in done.stdout
    assert _hourly(influx, "electricity") == []  # no data in April: nothing written
    client = make_client(api_rollup_interval_s=1, api_rollup_lookback_h=3)
    deadline = time.monotonic() + 60
    # Health reports the run once it is over, after its points are written.
    while "last run" not in client.get("/health").json()["rollups"]["detail"]:
        assert time.monotonic() < deadline, "the api never finished a rollup run"
        time.sleep(0.5)
    assert client.get("/health").json()["rollups"]["ok"]
    assert sum(_hourly(influx, "electricity")) == pytest.approx(12.0, abs=0.01)
