"""A year report through the api against raw InfluxQL over the same year.

Generates a year of 10-second readings for the three machines (the sensors a year report
uses: energy counters, the freezer's door contact, units packed) into a private influxd, runs
the rollup job over the year, then times, side by side in the same run:

- api: GET …/indicators?period=year for the three machines, over HTTP (uvicorn);
- raw: the same aggregates straight from the raw readings in InfluxQL (SPREAD of each counter,
  MEAN of the door contact), one query per sensor.

Prints both medians and their ratio; the targets are ≤ 300 ms and ≤ 1.5× raw.

    .venv/bin/python bench/api/year_report.py [--days 365] [--step-s 10] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn

from api.access.tokens import TokenRole, create_token
from api.accounting.rollups import run_rollups
from api.app import create_app
from api.database import make_engine, migrate, sessions
from api.settings import ApiSettings
from api.sites import SiteRegistry
from api.store import ReadingsStore
from dynamo.devservices import InfluxdProcess, free_port
from telemetry.influx.client import InfluxClient

REPO = Path(__file__).resolve().parents[2]
SITES = REPO / "firmware-config" / "sites"
YEAR_START = datetime(2025, 12, 31, 23, tzinfo=UTC)  # 1 January 2026, Europe/Paris
# (equipment, sensor, unit, kind, increase per 10 s): plausible rates for the three machines.
SENSORS = (
    ("dryer", "dryer.grid_import", "kWh", "counter", 0.004),
    ("dryer", "dryer.pv_energy", "kWh", "counter", 0.006),
    ("dryer", "dryer.electric", "kWh", "counter", 0.008),
    ("dryer", "dryer.solar_heat", "kWh", "counter", 0.05),
    ("freezer", "freezer.electric", "kWh", "counter", 0.02),
    ("freezer", "freezer.door_open", "", "state", 0.0),
    ("packaging", "packaging.electric", "kWh", "counter", 0.01),
    ("packaging", "packaging.units_packed", "units", "counter", 5.0),
)


def generate(influx: InfluxClient, *, days: int, step_s: int) -> int:
    """Write the readings in big gzip batches, several requests in flight."""
    start_ms = int(YEAR_START.timestamp() * 1000)
    steps = days * 86400 // step_s
    batch = 200_000

    def lines(sensor_index: int, first: int, last: int) -> list[str]:
        equipment, sensor, unit, kind, rate = SENSORS[sensor_index]
        prefix = (f"readings,equipment={equipment},gateway={equipment}-gw,quality=good,"
                  f"sensor={sensor},site=ariege" + (f",unit={unit}" if unit else "") + " value=")
        step_ms = step_s * 1000
        if kind == "counter":
            scale = rate * step_s / 10
            return [f"{prefix}{i * scale:.4f} {start_ms + i * step_ms}"
                    for i in range(first, last)]
        # The door opens for one minute every hour.
        return [f"{prefix}{1 if (i * step_s) % 3600 < 60 else 0} {start_ms + i * step_ms}"
                for i in range(first, last)]

    def job(sensor_index: int, first: int) -> None:
        influx.write(lines(sensor_index, first, min(first + batch, steps)))

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda a: job(*a), [(s, f) for s in range(len(SENSORS))
                                          for f in range(0, steps, batch)]))
    return steps * len(SENSORS)


def raw_statements(end: datetime) -> list[str]:
    where = (f"time >= '{YEAR_START:%Y-%m-%dT%H:%M:%SZ}' AND time < '{end:%Y-%m-%dT%H:%M:%SZ}'"
             " AND quality = 'good'")
    return [f"SELECT {'spread' if kind == 'counter' else 'mean'}(value) FROM readings"
            f" WHERE site = 'ariege' AND sensor = '{sensor}' AND {where}"
            for _, sensor, _, kind, _ in SENSORS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--step-s", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    end = YEAR_START + timedelta(days=args.days)
    with tempfile.TemporaryDirectory(prefix="bench-api-") as workdir:
        influxd = InfluxdProcess(workdir=Path(workdir) / "influxd")
        influxd.start()
        try:
            influx = InfluxClient(url=influxd.url, database="bench", timeout_s=300)
            influx.create_database()
            began = time.perf_counter()
            points = generate(influx, days=args.days, step_s=args.step_s)
            print(f"generated {points:,} readings in {time.perf_counter() - began:.0f} s")
            began = time.perf_counter()
            report = run_rollups(registry=SiteRegistry.load(SITES), store=ReadingsStore(influx),
                                 start=YEAR_START, end=end, around=timedelta(hours=6),
                                 max_gap=timedelta(minutes=5))
            print(f"rollups: {report.hours} hours, {report.points:,} points in "
                  f"{time.perf_counter() - began:.0f} s")
            api_ms, raw_ms = measure(influxd.url, Path(workdir), end, args.repeat, influx)
        finally:
            influxd.stop()
    print(f"year report through the api: {api_ms:.0f} ms (median of {args.repeat})")
    print(f"same aggregates in raw InfluxQL: {raw_ms:.0f} ms")
    print(f"ratio api/raw: {api_ms / raw_ms:.2f} (target ≤ 1.5); "
          f"api {'meets' if api_ms <= 300 else 'misses'} the 300 ms target")


def measure(url: str, workdir: Path, end: datetime, repeat: int,
            influx: InfluxClient) -> tuple[float, float]:
    database = f"sqlite:///{workdir / 'api.sqlite3'}"
    engine = make_engine(database)
    migrate(engine)
    with sessions(engine)() as db:
        token = create_token(db, role=TokenRole.EVALUATOR, site="ariege", name="bench")
    engine.dispose()
    settings = ApiSettings(site_configs=SITES, influx_url=url, influx_db="bench",
                           api_database_url=database, api_rollup_interval_s=0,
                           mqtt_port=free_port())  # no broker needed: /health is not timed
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit("the api did not start")
        time.sleep(0.05)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=120,
                          headers={"Authorization": f"Bearer {token}"})
    params = {"start": YEAR_START.isoformat(), "end": end.isoformat()}
    statements = raw_statements(end)
    api_runs: list[float] = []
    raw_runs: list[float] = []
    try:
        for _ in range(repeat):
            began = time.perf_counter()
            for machine in ("dryer", "freezer", "packaging"):
                response = client.get(f"/sites/ariege/equipment/{machine}/indicators",
                                      params=params)
                response.raise_for_status()
                assert response.json()["energy"]["evidence"] == "hourly rollups"
            api_runs.append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            for statement in statements:
                influx.query(statement)
            raw_runs.append((time.perf_counter() - began) * 1000)
    finally:
        client.close()
        server.should_exit = True
        thread.join(timeout=30)
    return statistics.median(api_runs), statistics.median(raw_runs)


if __name__ == "__main__":
    main()
