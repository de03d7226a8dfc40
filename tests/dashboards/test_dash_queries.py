"""Every panel's InfluxQL, run against a real influxd filled by the real chain.

Simulators → gateways → Mosquitto → collector → influxd, each component in its own process as
in production, configured by the Ariège site files; then the api's `dynamo api rollup` writes
its hourly rollups from that data. Grafana's macros are replaced by what Grafana would send for
the panel's time range. Alert events (written by alerting when a rule fires, which these few
seconds of normal operation do not make happen) and the collector's status (not written yet)
get a few points in the contract docs/dashboards.md gives, so that their queries run on data.
A freezer batch over the run and a freezer baseline are recorded in the api's database before
the rollup, so that it writes an `avoided_batches` point (a healthy site may have none).
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from api.database import make_engine, migrate, sessions
from api.records.tables import Baseline, Batch
from dashboards import (
    Dashboard,
    Expression,
    Lang,
    Panel,
    PanelType,
    Target,
    build_dashboards,
)
from dashboards.labels import TITLES
from dashboards.measurements import (
    ALERT_EVENTS,
    AVOIDED_BATCHES,
    COLLECTOR_STATUS,
    SEQUENCE_EVENTS,
)
from dynamo.devservices import InfluxdProcess, MosquittoProcess, wait_until
from simulators import run_in_thread
from telemetry.influx.client import InfluxClient, Series
from telemetry.influx.lineprotocol import line
from telemetry.loader import load_gateway_config

REPO = Path(__file__).resolve().parents[2]
SITES = REPO / "firmware-config" / "sites"
MACHINES = ("dryer", "freezer", "packaging")
READINGS_PER_SENSOR = 3  # enough for a difference over two intervals
INTERVAL = "5s"  # $__interval: the fastest poll period, so that intervals hold readings
FILLED_BY_TEST = {ALERT_EVENTS, AVOIDED_BATCHES, COLLECTOR_STATUS, SEQUENCE_EVENTS}


@dataclass
class Filled:
    influx: InfluxClient
    dashboards: list[Dashboard]
    started: datetime  # before the first reading


def _event_lines(now_ms: int) -> list[str]:
    """A few alert events, sequence events and collector statuses."""
    out = []
    for i, machine in enumerate(MACHINES):
        ts = now_ms - 60_000 + i * 1000
        for event, offset in (("fired", 0), ("acknowledged", 10_000)):
            out.append(line(ALERT_EVENTS, {"site": "ariege", "equipment": machine,
                                           "rule": f"{machine}-test", "severity": "warning",
                                           "event": event},
                            {"alert_id": i + 1, "title": "test alert", "subject": machine,
                             "detail": "", "value": 1.0}, ts + offset))
        for kind in ("gap", "lost", "repeat", "void"):
            out.append(line(SEQUENCE_EVENTS, {"site": "ariege", "gateway": f"{machine}-gw",
                                              "kind": kind}, {"seq": 100 + i, "count": 2}, ts))
    for i in range(3):
        out.append(line(COLLECTOR_STATUS, {"collector": "test"},
                        {"dead_letters": 4 + i, "queued_messages": 0}, now_ms - 30_000 + i * 5000))
    return out


def _record_batch(url: str, *, started: datetime) -> None:
    """A freezer batch from the start of the run to now, and a baseline for freezers: 10 t ×
    0.1 kWh/kg × the electricity factor (~52 kg CO2e) outweighs the few simulated minutes'
    electricity, so the avoided figure is positive like every summed figure checked here."""
    engine = make_engine(url)
    try:
        migrate(engine)
        with sessions(engine)() as db:
            db.add(Baseline(name="test-freezer", equipment_kind="freezer", output="kg_frozen",
                            activity_per_output=0.1, activity_unit="kWh",
                            factor_id="electricity-fr-mix-generation",
                            description="test reference freezer", source="test"))
            db.add(Batch(site="ariege", equipment="freezer", product="test",
                         started_at=started, ended_at=datetime.now(UTC) - timedelta(seconds=1),
                         mass_in_kg=10_000.0))
            db.commit()
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def filled(influxd: InfluxdProcess, mosquitto: MosquittoProcess,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    workdir = tmp_path_factory.mktemp("dash-chain")
    database = f"dash_{uuid.uuid4().hex[:8]}"
    # A June morning: the dryer's PV and solar collectors produce, so energy counters move.
    sims = run_in_thread(machines=MACHINES, speed=60.0, seed=7,
                         start=datetime(2026, 6, 15, 9, 0, tzinfo=UTC))
    env = {
        **os.environ, **sims.env(),
        "DYNAMO_MQTT_HOST": mosquitto.host, "DYNAMO_MQTT_PORT": str(mosquitto.port),
        "DYNAMO_MQTT_USERNAME": "collector", "DYNAMO_MQTT_PASSWORD": mosquitto.users["collector"],
        "DYNAMO_INFLUX_URL": influxd.url, "DYNAMO_INFLUX_DB": database,
        "DYNAMO_SITE_CONFIGS": str(SITES),
        "DYNAMO_API_DATABASE_URL": f"sqlite:///{workdir / 'api.sqlite3'}",
        "DYNAMO_SPOOL_DIR": str(workdir / "spool"), "DYNAMO_RAM_DIR": str(workdir / "ram"),
        **{f"DYNAMO_MQTT_PASSWORD_{m.upper()}_GW": mosquitto.users[f"{m}-gw"] for m in MACHINES},
    }
    processes: list[subprocess.Popen[bytes]] = []

    def spawn(name: str, *args: str) -> None:
        with (workdir / f"{name}.log").open("wb") as log:
            processes.append(subprocess.Popen([sys.executable, "-m", "dynamo", *args], env=env,
                                              stdout=log, stderr=subprocess.STDOUT))

    influx = InfluxClient(url=influxd.url, database=database)
    started = datetime.now(UTC)
    try:
        spawn("collector", "collector", "run", "--dead-letters", str(workdir / "dead.sqlite"),
              "--client-id", f"collector-{database}")
        for machine in MACHINES:
            spawn(f"{machine}-gw", "gateway", "run", "--config",
                  str(SITES / "ariege" / f"{machine}.yaml"))
        sensors = {s.id for m in MACHINES
                   for d in load_gateway_config(SITES / "ariege" / f"{m}.yaml").devices
                   for s in d.sensors}

        def complete() -> bool:
            for process in processes:
                if process.poll() is not None:
                    logs = "\n".join(p.read_text() for p in workdir.glob("*.log"))
                    raise AssertionError(f"a component exited:\n{logs[-4000:]}")
            try:
                series = influx.query('SELECT count("value") FROM "readings" '
                                      'WHERE "quality" = \'good\' GROUP BY "sensor"')
            except Exception:  # the database appears with the collector's first write
                return False
            counts = {s.tags["sensor"]: s.values[0][1] for s in series}
            return all(counts.get(sensor, 0) >= READINGS_PER_SENSOR for sensor in sensors)

        wait_until(complete, timeout_s=75, what=f"{READINGS_PER_SENSOR} readings of every sensor",
                   interval_s=0.5)
        influx.write(_event_lines(int(time.time() * 1000)))
        _record_batch(env["DYNAMO_API_DATABASE_URL"], started=started)
        rollup = subprocess.run([sys.executable, "-m", "dynamo", "api", "rollup", "--hours", "2"],
                                env=env, capture_output=True, timeout=120)
        assert rollup.returncode == 0, rollup.stderr.decode()[-4000:]
        yield Filled(influx=influx, dashboards=build_dashboards(SITES, Lang.FR), started=started)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        influx.close()
        sims.stop()


# -- what Grafana would send ------------------------------------------------------------------

_RELATIVE = re.compile(r"^now-(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _range_start(expression: str, timezone: str, now: datetime) -> datetime:
    if expression == "now/d":  # today so far, in the dashboard's time zone
        local = now.astimezone(ZoneInfo(timezone))
        return local.replace(hour=0, minute=0, second=0, microsecond=0)
    match = _RELATIVE.match(expression)
    assert match, f"time range {expression!r} not understood by the test"
    return now - timedelta(**{_UNITS[match[2]]: int(match[1])})


def grafana_query(query: str, *, start: datetime, end: datetime) -> str:
    """The query as Grafana's InfluxQL datasource sends it (its $timeFilter form)."""
    time_filter = (f"time >= {int(start.timestamp() * 1000)}ms and "
                   f"time <= {int(end.timestamp() * 1000)}ms")
    gateways = "(" + "|".join(re.escape(f"{m}-gw") for m in MACHINES) + ")"
    out = (query.replace("$timeFilter", time_filter).replace("$__interval", INTERVAL)
           .replace("$gateway", gateways))
    assert not re.search(r"\$\w", out), f"unreplaced macro in {out}"
    return out


def _group_tags(query: str) -> set[str]:
    group = query.partition(" GROUP BY ")[2]
    return set(re.findall(r'"([a-z_]+)"', re.sub(r"time\([^)]*\)", "", group)))


def _columns(query: str) -> list[str]:
    """The columns InfluxDB names for the SELECT list: an alias, else the function's name."""
    select = query.partition("SELECT ")[2].partition(" FROM ")[0]
    names = []
    for expression in re.split(r",\s*(?![^()]*\))", select):
        alias = re.search(r' AS "([^"]+)"$', expression)
        function = re.match(r"(\w+)\(", expression)
        names.append(alias[1] if alias else function[1] if function else expression.strip('"'))
    return ["time", *names]


def _measurement(query: str) -> str:
    match = re.search(r' FROM "([^"]+)"', query)
    assert match
    return match[1]


def _cases() -> list[Any]:
    cases = []
    for dashboard in build_dashboards(SITES, Lang.FR):
        for panel in dashboard.panels:
            for index in range(len(panel.queries)):
                cases.append(pytest.param(dashboard.uid, panel.title, index,
                                          id=f"{dashboard.uid}:{panel.title}:{index}"))
    return cases


def _find(filled: Filled, uid: str, title: str) -> tuple[Dashboard, Panel]:
    [dashboard] = [d for d in filled.dashboards if d.uid == uid]
    [panel] = [p for p in dashboard.panels if p.title == title]
    return dashboard, panel


def _run(filled: Filled, dashboard: Dashboard, panel: Panel, target: Target) -> list[Series]:
    now = datetime.now(UTC)
    start = _range_start(panel.time_from or dashboard.time_from, dashboard.timezone, now)
    # Every range covers the whole run, but "today" after a midnight that fell during the
    # run: then it would hold a few seconds of data, not what the panel is meant to show.
    start = min(start, filled.started)
    return filled.influx.query(grafana_query(target.query, start=start, end=now))


def test_every_panel_has_a_query_case() -> None:
    # Guards the parametrisation below: a builder returning no panels would test nothing.
    assert len(_cases()) > 60


@pytest.mark.parametrize("uid,title,index", _cases())
def test_panel_query_returns_data_of_the_expected_shape(filled: Filled, uid: str, title: str,
                                                        index: int) -> None:
    dashboard, panel = _find(filled, uid, title)
    target = panel.queries[index]
    series = _run(filled, dashboard, panel, target)
    expect_rows = not target.sparse or _measurement(target.query) in FILLED_BY_TEST
    if expect_rows:
        assert series and all(s.values for s in series), f"no data for {target.query}"
    columns = _columns(target.query)
    tags = _group_tags(target.query)
    for s in series:
        assert list(s.columns) == columns, target.query
        assert set(s.tags) == tags, target.query
        for row in s.rows():
            assert isinstance(row["time"], int)
            for name in columns[1:]:
                value = row[name]
                if panel.type is PanelType.TABLE and isinstance(value, str):
                    continue
                assert isinstance(value, int | float) and math.isfinite(value), (name, row)
                if columns[1] in ("non_negative_difference", "spread", "count", "sum"):
                    assert value >= 0, (target.query, row)
    # A state panel must name every code the machine actually reports.
    if panel.type is PanelType.STATE_TIMELINE or panel.mappings:
        codes = {row[columns[1]] for s in series for row in s.rows()}
        assert codes <= set(panel.mappings), (title, codes, panel.mappings)


def test_annotations_show_the_alerts_of_their_dashboard(filled: Filled) -> None:
    for dashboard in filled.dashboards:
        for annotation in dashboard.annotations:
            now = datetime.now(UTC)
            series = filled.influx.query(grafana_query(
                annotation.query, start=now - timedelta(hours=6), end=now))
            rows = [row for s in series for row in s.rows()]
            assert rows and all(row[annotation.text_column] == "test alert" for row in rows)
            machines = {row["rule"].removesuffix("-test") for row in rows}
            # A machine's dashboard shows its own alerts only; the overview shows them all.
            expected = set(MACHINES) if "overview" in dashboard.uid else {
                m for m in MACHINES if dashboard.uid.endswith(m)}
            assert machines == expected, dashboard.uid


def _expression_cases() -> list[Any]:
    return [pytest.param(d.uid, p.title, id=f"{d.uid}:{p.title}")
            for d in build_dashboards(SITES, Lang.FR) for p in d.panels
            if any(isinstance(t, Expression) for t in p.targets)]


@pytest.mark.parametrize("uid,title", _expression_cases())
def test_expression_operands_line_up_and_give_plausible_values(filled: Filled, uid: str,
                                                                title: str) -> None:
    """Grafana's math joins its operands point by point: they must share their timestamps."""
    dashboard, panel = _find(filled, uid, title)
    [expression] = [t for t in panel.targets if isinstance(t, Expression)]
    operands = {chr(ord("A") + i): _run(filled, dashboard, panel, target)
                for i, target in enumerate(panel.queries)}
    points = {ref: {row["time"]: row[s.columns[1]] for s in series for row in s.rows()}
              for ref, series in operands.items()}
    assert all(points.values()), f"an operand of {title} is empty"
    assert points["A"].keys() == points["B"].keys(), title
    results = []
    for at in points["A"]:
        text = expression.expression
        for ref, p in points.items():
            text = text.replace(f"${ref}", repr(float(p[at])))
        try:
            results.append(eval(text, {"__builtins__": {}}))  # arithmetic on numbers only
        except ZeroDivisionError:
            continue  # Grafana shows no value there (e.g. nothing packed in that interval)
    assert results, f"no interval where {title} is defined"
    if panel.unit == "percent":
        assert all(0 <= r <= 100 for r in results), results
    else:
        assert all(r >= 0 for r in results), results
        assert any(r > 0 for r in results), results


def test_emission_panels_show_every_machine_from_the_api_rollup(filled: Filled) -> None:
    """The CO2e panels read the api's `ghg_hourly`: each machine buys electricity, so each has
    scope 2 points, and each point is its activity × the factor the api recorded with it."""
    [evaluation] = [d for d in filled.dashboards if d.uid.endswith("evaluation")]
    [by_scope] = [p for p in evaluation.panels if p.title == TITLES["co2e_by_scope"](Lang.FR)]
    series = _run(filled, evaluation, by_scope, by_scope.queries[0])
    assert {(s.tags["scope"], s.tags["equipment"]) for s in series} >= {
        ("2", m) for m in MACHINES}
    points = filled.influx.query(
        'SELECT "co2e_kg", "quantity", "factor_value" FROM "ghg_hourly" GROUP BY "equipment"')
    rows = [row for s in points for row in s.rows()]
    assert rows and all(row["co2e_kg"] == pytest.approx(row["quantity"] * row["factor_value"])
                        for row in rows)
    assert any(row["co2e_kg"] > 0 for row in rows)
