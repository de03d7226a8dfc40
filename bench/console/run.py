"""The console's busiest pages with a year of readings and 2,000 records, against the api's own
`/latest` measured in the same run.

Starts a private influxd and mosquitto (`dynamo.devservices`, as the tests do), writes a year of
readings for every sensor of the three Ariège machines (one every `--step-s`, ending now, so the
overview's look-back finds the newest), stores 2,000 production records through the records
service, serves the api with uvicorn on a loopback port, signs a person in through the console's
form, then times each page `--repeat` times, one request at a time:

- console `/` (the site overview: 3 machines, their newest readings, gateways, alerts);
- console `/registres/ariege/dryer/batches` (the records list, when that page is present);
- console `/a-completer` (what is missing: every batch's fields, 14 days of each machine's
  running state against its batches);
- console `/indicateurs/ariege/dryer?periode=day`;
- api `GET /api/v1/sites/ariege/equipment/dryer/latest` (one machine's newest readings).

Prints p50 and p95 of each (time to the full response over loopback HTTP) and the overview's
ratio to `/latest`. Target: p95 ≤ 150 ms for the overview, the records list and what is
missing.

    .venv/bin/python bench/console/run.py [--days 365] [--step-s 300] [--records 2000]
                                          [--repeat 200]
"""

from __future__ import annotations

import argparse
import math
import re
import secrets
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn

from api.access import people
from api.access.tokens import TokenRole, create_token
from api.app import create_app
from api.database import make_engine, migrate, sessions
from api.records import service
from api.settings import ApiSettings
from api.sites import SiteRegistry
from dynamo.devservices import InfluxdProcess, MosquittoProcess, free_port
from telemetry.influx.client import InfluxClient
from telemetry.roles import Kind

REPO = Path(__file__).resolve().parents[2]
SITES = REPO / "firmware-config" / "sites" / "ariege"
START_TIMEOUT_S = 60.0
WARMUP = 5


def generate(influx: InfluxClient, registry: SiteRegistry, *, days: int, step_s: int,
             end: datetime) -> int:
    """Every sensor of every machine: counters rising, gauges on a daily wave, states on/off
    by the hour. Returns the number of points written."""
    end_ms = int(end.timestamp() * 1000)
    steps = days * 86400 // step_s
    start_ms = end_ms - steps * step_s * 1000
    sensors = [(eq, s) for eq in registry.equipment.values() for s in eq.sensors]
    batch = 200_000

    def lines(index: int, first: int, last: int) -> list[str]:
        eq, sensor = sensors[index]
        prefix = (f"readings,device={sensor.device},equipment={eq.id},gateway={eq.gateway},"
                  f"quality=good,sensor={sensor.id},site={eq.site},"
                  f"unit={sensor.unit or 'dimensionless'} value=")
        out = []
        for i in range(first, last):
            t = start_ms + i * step_s * 1000
            hour = (t // 3_600_000) % 24
            if sensor.role.kind is Kind.COUNTER:
                value = i * step_s / 3600 * (1 + index % 5)
            elif sensor.role.kind is Kind.STATE:
                value = 1.0 if 8 <= hour < 18 else 0.0
            else:
                value = 20 + 10 * math.sin(2 * math.pi * hour / 24) + index
            out.append(f"{prefix}{value:.3f} {t}")
        return out

    def job(index: int, first: int) -> None:
        influx.write(lines(index, first, min(first + batch, steps)))

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda a: job(*a), [(s, f) for s in range(len(sensors))
                                          for f in range(0, steps, batch)]))
    return steps * len(sensors)


def seed_records(database_url: str, registry: SiteRegistry, *, count: int,
                 end: datetime) -> None:
    """`count` batches spread over the year, a third per machine, through the records service
    (each with its audit entry, as the api stores them)."""
    engine = make_engine(database_url)
    machines = ["dryer", "freezer", "packaging"]
    try:
        with sessions(engine)() as db:
            for i in range(count):
                name = machines[i % 3]
                started = end - timedelta(hours=4 * (count - i) + 3)
                values: dict[str, object] = {
                    "product": f"lot {i}", "started_at": started,
                    "ended_at": started + timedelta(hours=3)}
                if name == "dryer":
                    values |= {"mass_in_kg": 8000.0, "moisture_in_pct": 62.0,
                               "moisture_out_pct": 13.0}
                elif name == "freezer":
                    values |= {"mass_in_kg": 400.0}
                else:
                    values |= {"units": 18000}
                service.create(db, "batches", values, equipment=registry.get("ariege", name),
                               actor="bench", via="cli")
    finally:
        engine.dispose()


def sign_in(client: httpx.Client, login: str, password: str) -> None:
    form = client.get("/connexion")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    if token is None:
        raise SystemExit("the sign-in page has no CSRF token")
    answer = client.post("/connexion", data={"csrf_token": token.group(1), "next": "/",
                                             "login": login, "password": password})
    if answer.status_code != 200 or "/connexion" in str(answer.url):
        raise SystemExit(f"signing in failed: {answer.status_code} {answer.url}")


def timed(client: httpx.Client, path: str, repeat: int) -> list[float] | None:
    """Milliseconds of each of `repeat` requests, or None when the page answers no 200."""
    for _ in range(WARMUP):
        if client.get(path).status_code != 200:
            return None
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = client.get(path)
        out.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"{path}: {answer.status_code} during the run")
    return out


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--step-s", type=int, default=300)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    registry = SiteRegistry.load(SITES)
    with tempfile.TemporaryDirectory(prefix="dynamo-bench-console-") as tmp:
        work = Path(tmp)
        influxd = InfluxdProcess(workdir=work / "influxd")
        broker = MosquittoProcess(workdir=work / "mosquitto",
                                  users={"api": secrets.token_urlsafe(12)},
                                  acl_file=REPO / "firmware-config" / "broker" / "acl")
        influxd.start()
        broker.start()
        try:
            run(args, registry, work, influxd, broker)
        finally:
            broker.stop()
            influxd.stop()


def run(args: argparse.Namespace, registry: SiteRegistry, work: Path, influxd: InfluxdProcess,
        broker: MosquittoProcess) -> None:
    end = datetime.now(UTC) - timedelta(seconds=30)
    influx = InfluxClient(url=influxd.url, database="bench", timeout_s=120)
    influx.create_database()
    started = time.perf_counter()
    points = generate(influx, registry, days=args.days, step_s=args.step_s, end=end)
    print(f"readings: {points:,} points ({args.days} days, one every {args.step_s} s, "
          f"{sum(len(e.sensors) for e in registry.equipment.values())} sensors) written in "
          f"{time.perf_counter() - started:.0f} s")
    database_url = f"sqlite:///{work / 'api.sqlite3'}"
    engine = make_engine(database_url)
    migrate(engine)
    engine.dispose()
    started = time.perf_counter()
    seed_records(database_url, registry, count=args.records, end=end)
    print(f"records: {args.records} batches stored in {time.perf_counter() - started:.0f} s")
    settings = ApiSettings(
        site_configs=SITES, influx_url=influxd.url, influx_db="bench",
        mqtt_host=broker.host, mqtt_port=broker.port, mqtt_username="api",
        mqtt_password=broker.users["api"], api_database_url=database_url,
        api_rollup_interval_s=0)
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit("the api did not start")
        time.sleep(0.05)
    try:
        with app.state.sessions() as db:
            token = create_token(db, role=TokenRole.ADMIN, site=None, name="bench")
            password = secrets.token_urlsafe(16)
            people.create_person(db, login="bench", name="bench", role=TokenRole.OPERATOR,
                                 site="ariege", password=password)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=60, follow_redirects=True) as console, \
                httpx.Client(base_url=base, timeout=60,
                             headers={"Authorization": f"Bearer {token}"}) as api:
            sign_in(console, "bench", password)
            results = {
                "console /": timed(console, "/", args.repeat),
                "console /registres/ariege/dryer/batches":
                    timed(console, "/registres/ariege/dryer/batches", args.repeat),
                "console /a-completer": timed(console, "/a-completer", args.repeat),
                "console /indicateurs/ariege/dryer?periode=day":
                    timed(console, "/indicateurs/ariege/dryer?periode=day",
                          max(10, args.repeat // 4)),
                "api /api/v1/.../dryer/latest":
                    timed(api, "/api/v1/sites/ariege/equipment/dryer/latest", args.repeat),
            }
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT_S)
    print(f"\n{'page':<52} {'n':>5} {'p50 ms':>8} {'p95 ms':>8}")
    for name, times in results.items():
        if times is None:
            print(f"{name:<52} {'—':>5}  (no 200 answer: page not present)")
            continue
        print(f"{name:<52} {len(times):>5} {statistics.median(times):>8.1f} "
              f"{percentile(times, 95):>8.1f}")
    overview, latest = results["console /"], results["api /api/v1/.../dryer/latest"]
    if overview and latest:
        ratio = statistics.median(overview) / statistics.median(latest)
        print(f"\noverview / latest (p50): {ratio:.2f}×  (the overview reads 3 machines' "
              "newest readings, gateways and alerts; target p95 ≤ 150 ms)")


if __name__ == "__main__":
    main()
