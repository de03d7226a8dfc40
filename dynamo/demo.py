"""`dynamo demo`: the whole chain on one machine, each component in its own process.

simulators (Modbus TCP) → three gateways → Mosquitto → collector → InfluxDB → api
Everything listens on 127.0.0.1; broker and database are private instances in `workdir`.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from dynamo.devservices import (
    InfluxdProcess,
    MosquittoProcess,
    free_port,
    generated_acl,
    stop_processes,
)
from simulators.server import encode_point
from telemetry.datatypes import DataType
from telemetry.registers import decode_registers

REPO = Path(__file__).resolve().parents[1]
SITES = REPO / "firmware-config" / "sites"
GATEWAYS = {"dryer-gw": "ariege/dryer.yaml", "freezer-gw": "ariege/freezer.yaml",
            "packaging-gw": "ariege/packaging.yaml"}


def _free_base() -> int:
    """A port with its two successors free, for the three simulators."""
    for _ in range(50):
        base = free_port()
        if base < 65000 and all(_is_free(base + i) for i in range(3)):
            return base
    raise RuntimeError("no three consecutive free ports found")


def _is_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def run_demo(*, api_port: int, speed: float, workdir: Path) -> None:
    """Start everything, print where to look, and run until Ctrl-C."""
    if not _is_free(api_port):
        raise SystemExit(f"port {api_port} is taken: pass --api-port")
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    users = {u: secrets.token_urlsafe(16)
             for u in (*GATEWAYS, "collector", "api", "alerting")}
    influxd = InfluxdProcess(workdir=workdir / "influxd")
    # The ACL `dynamo broker acl` makes from the same site configurations the gateways run.
    broker = MosquittoProcess(workdir=workdir / "mosquitto", users=users,
                              acl_file=generated_acl(workdir / "mosquitto", sites=SITES))
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        influxd.start()
        broker.start()
        credentials = workdir / "credentials.txt"
        credentials.write_text("".join(f"{u} {p}\n" for u, p in users.items()))
        credentials.chmod(0o600)
        # A week of readings before anything live starts: the history ends where the gateways'
        # first readings begin.
        history_end = datetime.now(UTC)
        print(f"seeding {HISTORY_DAYS} days of history from the simulators' physics…",
              flush=True)
        history = seed_history(influx_url=influxd.url, database="dynamo", end=history_end)
        base = _free_base()
        env = {
            **os.environ,
            "DYNAMO_MQTT_HOST": broker.host, "DYNAMO_MQTT_PORT": str(broker.port),
            "DYNAMO_INFLUX_URL": influxd.url, "DYNAMO_INFLUX_DB": "dynamo",
            "DYNAMO_SIM_HOST": "127.0.0.1", "DYNAMO_DRYER_SIM_PORT": str(base),
            "DYNAMO_FREEZER_SIM_PORT": str(base + 1), "DYNAMO_PACKAGING_SIM_PORT": str(base + 2),
            "DYNAMO_SITE_CONFIGS": str(SITES), "DYNAMO_SPOOL_DIR": str(workdir / "spool"),
            "DYNAMO_RAM_DIR": str(workdir / "ram"),
            "DYNAMO_API_DATABASE_URL": f"sqlite:///{workdir / 'api.sqlite3'}",
            "DYNAMO_API_ALERT_DB": str(workdir / "alerting" / "alerts.sqlite"),
            **{f"DYNAMO_MQTT_PASSWORD_{gw.upper().replace('-', '_')}": users[gw]
               for gw in GATEWAYS},
        }
        # Each service's Prometheus /metrics on a free loopback port (three gateways share
        # this machine, so not the default ports); the api serves its own.
        metrics = {name: free_port() for name in ("collector", "alerting", *GATEWAYS)}
        env["DYNAMO_COLLECTOR_METRICS_PORT"] = str(metrics["collector"])
        env["DYNAMO_ALERTING_METRICS_PORT"] = str(metrics["alerting"])
        dynamo = [sys.executable, "-m", "dynamo"]
        logs = workdir / "logs"
        logs.mkdir()

        def spawn(name: str, args: list[str], **extra: str) -> None:
            with (logs / f"{name}.log").open("ab") as log:
                children[name] = subprocess.Popen(
                    [*dynamo, *args], env={**env, **extra}, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True)

        meters = workdir / "meters.json"
        meters.write_text(json.dumps(history.meters))
        spawn("simulators", ["simulate", "--machine", "all", "--port-base", str(base),
                             "--speed", str(speed), "--meters", str(meters)])
        spawn("collector", ["collector", "run", "--dead-letters",
                            str(workdir / "collector" / "dead-letters.sqlite")],
              DYNAMO_MQTT_USERNAME="collector", DYNAMO_MQTT_PASSWORD=users["collector"])
        for gw, config in GATEWAYS.items():
            spawn(gw, ["gateway", "run", "--config", str(SITES / config)],
                  DYNAMO_GATEWAY_METRICS_PORT=str(metrics[gw]))
        _start_alerting(workdir, children, spawn, password=users["alerting"])
        # Every route but /health needs a token: make an admin one for the person at the demo.
        token = subprocess.run([*dynamo, "api", "token", "create", "--role", "admin",
                                "--name", "demo"], env=env, capture_output=True, text=True,
                               check=True, timeout=120).stdout.strip()
        spawn("api", ["api", "run", "--port", str(api_port)],
              DYNAMO_MQTT_USERNAME="api", DYNAMO_MQTT_PASSWORD=users["api"])
        _wait_api(api_port, children)
        seeded, campaigns = seed_records(database_url=env["DYNAMO_API_DATABASE_URL"],
                                         now=history.end or history_end,
                                         batches=history.batches)
        logins = demo_people(database_url=env["DYNAMO_API_DATABASE_URL"])
        _announce(api_port, influxd, broker, workdir, speed, token)
        _announce_metrics(api_port, metrics, alerting="alerting" in children)
        _announce_console(api_port, seeded, logins, history, campaigns)
        _supervise(children)
    finally:
        stop_processes(children.values(), timeout_s=10)
        broker.stop()
        influxd.stop()


def _start_alerting(workdir: Path, children: dict[str, subprocess.Popen[bytes]],
                    spawn: Callable[..., None], *, password: str) -> None:
    """The central SMS alerting on gammu's dummy phone (real gammu-smsd; the SMS it "sends"
    are files under `workdir/phone/`), so that alerts, their acknowledgement from the console
    and the alerts page work in the demo as on a site."""
    from alerting.gammu import write_smsd_config

    if shutil.which("gammu-smsd") is None:
        print("gammu-smsd is missing (scripts/bootstrap installs it): no alerting in this demo",
              flush=True)
        return
    smsd = write_smsd_config(directory=workdir / "smsd", device=f"{workdir / 'phone'}/",
                             model="dummy", connection="none")
    with (workdir / "logs" / "gammu-smsd.log").open("ab") as log:
        children["gammu-smsd"] = subprocess.Popen(
            ["gammu-smsd", "-c", str(smsd.config)], stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    spawn("alerting", ["alerts", "run", "--rules",
                       str(REPO / "firmware-config" / "alerts" / "ariege.yaml"),
                       "--db", str(workdir / "alerting" / "alerts.sqlite"),
                       "--smsd-config", str(smsd.config)],
          DYNAMO_MQTT_USERNAME="alerting", DYNAMO_MQTT_PASSWORD=password)


def _wait_api(port: int, children: dict[str, subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _check_alive(children)
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the api did not become healthy within 60 s; see the logs")


def _check_alive(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for name, child in children.items():
        if child.poll() is not None:
            raise SystemExit(f"{name} exited with code {child.returncode}; see its log")


def _announce(port: int, influxd: InfluxdProcess, broker: MosquittoProcess, workdir: Path,
              speed: float, token: str) -> None:
    api = f"http://127.0.0.1:{port}"
    print(f"""
DYNAMO demo running (simulated time ×{speed:g}). Ctrl-C stops everything.

  api docs         {api}/docs   (Authorize with the token below)
  api token        {token}
                   e.g. curl -H "Authorization: Bearer {token}" {api}/api/v1/equipment
  health           {api}/api/v1/health
  equipment        {api}/api/v1/equipment
  latest readings  {api}/api/v1/sites/ariege/equipment/dryer/latest
  energy           {api}/api/v1/sites/ariege/equipment/freezer/energy?start=…&end=…
  InfluxDB (v1)    {influxd.url}  database "dynamo"
  Mosquitto        {broker.host}:{broker.port}  (users and passwords: {workdir}/credentials.txt)
  logs             {workdir}/logs/
""", flush=True)


def _announce_metrics(api_port: int, ports: Mapping[str, int], *, alerting: bool) -> None:
    """Where each service serves its Prometheus metrics (docs/operations.md)."""
    urls = {name: f"http://127.0.0.1:{port}/metrics" for name, port in ports.items()
            if name != "alerting" or alerting}
    urls["api"] = f"http://127.0.0.1:{api_port}/metrics"
    width = max(len(name) for name in urls)
    print("  Prometheus metrics (docs/operations.md):", flush=True)
    for name, url in urls.items():
        print(f"    {name:<{width}}  {url}", flush=True)
    print(flush=True)


def _supervise(children: dict[str, subprocess.Popen[bytes]]) -> None:
    stop: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: stop.append(s))
    while not stop:
        _check_alive(children)
        time.sleep(1)
    print("stopping…", flush=True)


# --- a week of readings before the demo started ----------------------------------------------

HISTORY_DAYS = 7
# One reading every 2 minutes per sensor (the gateways poll every 5-10 s): under the api's
# 300 s gap limit, and a week in about 15 s.
HISTORY_SAMPLE_S = 120
HISTORY_STEP_S = 10.0  # the physics' longest step
HISTORY_BATCH = 50_000  # lines per write


@dataclass
class SimulatedBatch:
    """A batch as the simulated machine ran it: what an operator would have written down."""

    machine: str
    started_at: datetime
    ended_at: datetime | None = None
    mass_in_kg: float = 0.0
    moisture_in_pct: float = 0.0
    moisture_out_pct: float = 0.0
    units_start: float = 0.0
    units: int = 0


@dataclass
class History:
    """What `seed_history` wrote: points per machine and the batches the machines ran."""

    points: dict[str, int] = field(default_factory=dict)
    batches: list[SimulatedBatch] = field(default_factory=list)
    # Where each machine's cumulative meters ended: the live simulators start from there
    # (`dynamo simulate --meters`), so no meter drops at the demo's start.
    meters: dict[str, dict[str, float]] = field(default_factory=dict)
    # The last reading's time: a campaign ending exactly there reads the history's own last
    # meter values, not an interpolation towards the live ones.
    end: datetime | None = None
    seconds: float = 0.0


def _register_value(point: Any, physical: float) -> float | bool:
    """`physical` through the registers, as the gateway decodes the simulator's answer: the
    integer rounding, saturation and float32 precision of the template's data type."""
    registers = encode_point(point, physical)
    if point.register_type.is_bit:
        return bool(registers[0])
    if point.data_type is DataType.STRING:
        return 0.0
    value = decode_registers(registers, data_type=point.data_type, order=point.order,
                             bit=point.bit)
    return value if isinstance(value, bool) else float(value)


def seed_history(*, influx_url: str, database: str, end: datetime,
                 days: int = HISTORY_DAYS) -> History:
    """History seeded by the demo: `days` of readings ending at `end`, written straight into
    InfluxDB for the three machines, as their gateways and the collector would have stored them.

    Each machine's own simulator model (same physics, same seed as the live one) is stepped on
    a fixed clock from `end - days` to `end` at ×1 (simulated time is wall time). Every
    `HISTORY_SAMPLE_S` each sensor of the site configuration is read through the register
    encoding of its template (`simulators.server`), made a reading by the gateway's own rule
    (`gateway.reading.make_reading`) and turned into line protocol by the collector's
    (`collector.points.telemetry_lines`): the same points, without MQTT. The batches the
    machines ran (loads and ends of the dryer's cell and the freezer's cabinet, the line's
    shifts) are returned so the demo's records match the readings, and the meters' last
    values, from which the live simulators continue (`_meters`). The physics is stepped first
    (at most `HISTORY_STEP_S`), then encoded: about 15 s for a week on the development machine.
    """
    from collector.points import telemetry_lines
    from gateway.reading import make_reading
    from simulators.clock import SITE_TIMEZONE, SimClock
    from simulators.runner import MODELS
    from simulators.server import _resolve_sources
    from simulators.simulation import Simulation
    from telemetry.influx.client import InfluxClient
    from telemetry.loader import load_gateway_config
    from telemetry.payload import Telemetry
    from telemetry.template import RegisterPoint

    began = time.monotonic()
    start_s = float(int(end.timestamp()) - days * 86400)
    start_s -= start_s % HISTORY_SAMPLE_S
    steps = int((end.timestamp() - start_s) // HISTORY_SAMPLE_S)
    history = History()
    client = InfluxClient(url=influx_url, database=database, timeout_s=120)
    try:
        client.create_database()
        for gateway, config_file in GATEWAYS.items():
            machine = gateway.removesuffix("-gw")
            config = load_gateway_config(SITES / config_file)
            model = MODELS[machine](
                seed=0, start=datetime.fromtimestamp(start_s, SITE_TIMEZONE))
            clock = SimClock(speed=1.0, wall=functools.partial(float, start_s))
            simulation = Simulation(model, clock=clock, max_step_s=HISTORY_STEP_S,
                                    max_samples=10_000, sample_every_ms=3_600_000)
            devices = []
            for device in config.devices:
                template = config.templates.get(device.template)
                if template is None or template.protocol != "modbus":
                    continue
                sources = _resolve_sources(device, template, simulation)
                read = [(sensor, point) for sensor in device.sensors
                        if isinstance(point := config.point_of(device, sensor), RegisterPoint)]
                devices.append((device, sources, read))
            tracker = _BatchTracker(machine, SITE_TIMEZONE)
            states: list[tuple[float, Mapping[str, float]]] = []
            for step in range(1, steps + 1):
                wall_s = start_s + step * HISTORY_SAMPLE_S
                values = simulation.advance(wall_s)
                states.append((wall_s, values))
                tracker.observe(values, datetime.fromtimestamp(wall_s, UTC))
            history.end = datetime.fromtimestamp(states[-1][0], UTC)
            history.batches += tracker.batches_ended()
            history.meters[machine] = _meters(model, devices, states[-1][1])
            lines: list[str] = []
            written = 0
            for step, (wall_s, values) in enumerate(states, start=1):
                for device, sources, read in devices:
                    raw: dict[str, float | str | bool] = {
                        point.key: _register_value(point, sources[point.key](values))
                        for _, point in read}
                    message = Telemetry(
                        site=config.site, gateway=config.gateway, equipment=device.equipment,
                        device=device.id, seq=step, ts=int(wall_s * 1000),
                        readings=tuple(make_reading(sensor, point, raw, {})
                                       for sensor, point in read))
                    lines += telemetry_lines(message)
                if len(lines) >= HISTORY_BATCH:
                    client.write(lines)
                    written += len(lines)
                    lines = []
            client.write(lines)
            history.points[machine] = written + len(lines)
    finally:
        client.close()
    history.seconds = time.monotonic() - began
    return history


def _meters(model: Any, devices: list[Any], last: Mapping[str, float]) -> dict[str, float]:
    """The last value of each cumulative meter a sensor of the site reads (counter roles)."""
    from telemetry.roles import ROLES, Kind

    meters: dict[str, float] = {}
    for _, _, read in devices:
        for sensor, _ in read:
            role = ROLES.get(sensor.role)
            name = model.variable_for(role=sensor.role, attributes=sensor.attributes)
            if role is not None and role.kind is Kind.COUNTER and name is not None:
                meters[name] = last[name]
    return meters


class _BatchTracker:
    """The batches a machine ran, from its true state observed once a sample: the dryer's
    cell from load to dry (`batch_state` FINISHED), the freezer's cabinet from load to unload
    (HOLDING again), the packaging line's shift (06:00-22:00 site time) with the units
    packed meanwhile."""

    def __init__(self, machine: str, zone: ZoneInfo) -> None:
        self.machine = machine
        self.zone = zone
        self.batches: list[SimulatedBatch] = []
        self.current: SimulatedBatch | None = None
        self.number = -1.0

    def observe(self, values: Mapping[str, float], at: datetime) -> None:
        if self.machine == "packaging":
            in_shift = 6 <= at.astimezone(self.zone).hour < 22
            if in_shift and self.current is None:
                self.current = SimulatedBatch(self.machine, at,
                                              units_start=values["units_packed"])
            elif not in_shift and self.current is not None:
                self._close(at, values)
            return
        number, state = values["batch_number"], values["batch_state"]
        if number != self.number:
            if self.number >= 0 or state != 0.0:  # a load (or the cell found loaded)
                self._close(at, values)
                self.current = SimulatedBatch(
                    self.machine, at, mass_in_kg=values["batch_mass_kg"],
                    moisture_in_pct=values.get("hay_moisture_pct", 0.0))
            self.number = number
        elif self.current is not None and state == (2.0 if self.machine == "dryer" else 0.0):
            self._close(at, values)

    def _close(self, at: datetime, values: Mapping[str, float]) -> None:
        batch, self.current = self.current, None
        if batch is None:
            return
        batch.ended_at = at
        batch.moisture_out_pct = values.get("hay_moisture_pct", 0.0)
        batch.units = int(values.get("units_packed", 0.0) - batch.units_start)
        self.batches.append(batch)

    def batches_ended(self) -> list[SimulatedBatch]:
        """The batches that ended: one still under way at the end is not written down yet
        (an operator enters a batch when it comes out)."""
        return self.batches


# --- a week of production records, and the demo's people -----------------------------------

# The demo's material lots name a factor of the shipped table only if it has one for the
# material; otherwise the lot is skipped and the reason printed.
MATERIAL_FACTORS = {"cardboard": "cardboard-recycled-kg", "pla_film": "pla-film-kg"}


CAMPAIGN = "Semaine de démonstration"


def _week_records(now: datetime, batches: list[SimulatedBatch]
                  ) -> list[tuple[str, str, dict[str, Any]]]:
    """(equipment, record kind, values) of the week at the Ariège site that the history's
    readings show, ending `now`.

    The batches are the ones the simulated machines ran (`seed_history`), written as an
    operator would: masses to the 10 kg of the weighbridge (the freezer's to the kg),
    moistures to the 0.1 % of the moisture meter, the line's units from its counter. Each
    machine has a closed campaign over the whole week ("Semaine de démonstration") holding its
    batches, so its indicators cover the week whatever day the demo runs. Campaigns and lots
    come first; the batches name them as "{campaign}" and "{lot}" (resolved on store: the
    packaging runs use the cardboard lot).
    """
    paris = ZoneInfo("Europe/Paris")
    today = now.astimezone(paris).replace(hour=0, minute=0, second=0, microsecond=0)
    first = min((b.started_at for b in batches), default=now - timedelta(days=HISTORY_DAYS))
    out: list[tuple[str, str, dict[str, Any]]] = []
    for machine in ("dryer", "freezer", "packaging"):
        out.append((machine, "campaigns", {
            "name": CAMPAIGN, "started_at": first, "ended_at": now,
            "notes": "Historique simulé semé par la démo (dynamo demo)"}))
    for material, factor in MATERIAL_FACTORS.items():
        out.append(("packaging", "material_lots", {
            "material": material, "supplier": "Fournisseur de démonstration",
            "mass_kg": 500.0, "factor_id": factor, "received_at": first}))
    for batch in batches:
        assert batch.ended_at is not None
        local = batch.started_at.astimezone(paris)
        values: dict[str, Any] = {"started_at": batch.started_at, "ended_at": batch.ended_at,
                                  "campaign_id": "{campaign}"}
        if batch.machine == "dryer":
            values |= {"product": f"Luzerne, lot L{local:%m%d}",
                       "mass_in_kg": round(batch.mass_in_kg, -1),
                       "moisture_in_pct": round(batch.moisture_in_pct, 1),
                       "moisture_out_pct": round(batch.moisture_out_pct, 1)}
        elif batch.machine == "freezer":
            values |= {"product": f"Légumes, lot S{local:%m%d-%H%M}",
                       "mass_in_kg": float(round(batch.mass_in_kg))}
        else:
            values |= {"product": f"Sachets 500 g, OF {local:%m%d}", "units": batch.units,
                       "material_lot_id": "{lot}"}
        out.append((batch.machine, "batches", values))
    # The top-up and the delivery fall earlier today, so that whichever period is shown first
    # (today, this week, this month) counts them.
    earlier_today = max(today + timedelta(minutes=5), now - timedelta(hours=2))
    out.append(("freezer", "refrigerant_top_ups", {
        "refrigerant": "R290", "mass_kg": 0.15, "at": earlier_today,
        "notes": "Appoint après recherche de fuite (démonstration)"}))
    out.append(("dryer", "manual_activities", {
        "kind": "fuel_delivery", "carrier": "fuel_oil", "quantity": 300.0,
        "delivered_at": earlier_today, "delivery_note": "BL-2026-0042",
        "notes": "Brûleur d'appoint du séchoir (démonstration)"}))
    return out


def seed_records(*, database_url: str, now: datetime,
                 batches: list[SimulatedBatch]) -> tuple[list[str], dict[str, int]]:
    """Store the demo's week of records through the records service (as the api would, each
    audited as made by `demo`); returns one line per record kind, or why one was skipped, and
    the campaign id of each machine."""
    from api.database import make_engine, sessions
    from api.records import service
    from api.records.service import RecordError
    from api.sites import SiteRegistry

    registry = SiteRegistry.load(SITES)
    engine = make_engine(database_url)
    made: dict[str, int] = {}
    skipped: list[str] = []
    campaigns: dict[str, int] = {}
    lot: int | None = None
    try:
        with sessions(engine)() as db:
            for equipment, kind, values in _week_records(now, batches):
                if values.get("campaign_id") == "{campaign}":
                    values = {**values, "campaign_id": campaigns.get(equipment)}
                if values.get("material_lot_id") == "{lot}":
                    values = {**values, "material_lot_id": lot}
                try:
                    row = service.create(db, kind, values,
                                         equipment=registry.get("ariege", equipment),
                                         actor="demo", via="cli")
                except (RecordError, KeyError, ValueError) as exc:
                    db.rollback()
                    reason = " ".join(str(exc).split())[:160]
                    skipped.append(f"{equipment} {kind}: {reason}")
                    continue
                if kind == "campaigns":
                    campaigns[equipment] = int(row.id)
                elif kind == "material_lots" and lot is None:
                    lot = int(row.id)  # the first lot (cardboard): the one the runs name
                key = f"{equipment} {kind}"
                made[key] = made.get(key, 0) + 1
    finally:
        engine.dispose()
    return ([f"{key}: {n}" for key, n in made.items()] + [f"skipped {s}" for s in skipped],
            campaigns)


def demo_people(*, database_url: str) -> dict[str, str]:
    """An admin and an Ariège operator with fresh passwords (printed once)."""
    from api.access import people
    from api.access.tokens import TokenRole
    from api.database import make_engine, sessions

    passwords = {"admin": secrets.token_urlsafe(12), "operateur": secrets.token_urlsafe(12)}
    engine = make_engine(database_url)
    try:
        with sessions(engine)() as db:
            people.create_person(db, login="admin", name="Administrateur de la démo",
                                 role=TokenRole.ADMIN, site=None, password=passwords["admin"])
            people.create_person(db, login="operateur", name="Opérateur de l'Ariège",
                                 role=TokenRole.OPERATOR, site="ariege",
                                 password=passwords["operateur"])
    finally:
        engine.dispose()
    return passwords


def _announce_console(port: int, seeded: list[str], logins: dict[str, str], history: History,
                      campaigns: dict[str, int]) -> None:
    console = f"http://127.0.0.1:{port}/"
    lines = "\n".join(f"                   {line}" for line in seeded)
    points = sum(history.points.values())
    dryer = campaigns.get("dryer")
    week = (f"{console}indicateurs/ariege/dryer?periode=campaign&campagne={dryer}"
            if dryer else f"{console}indicateurs/ariege/dryer?periode=month")
    print(f"""  console          {console}
  console logins   admin / {logins['admin']}   (every site)
                   operateur / {logins['operateur']}   (site ariege, operator)
  history          seeded by the demo: {points:,} readings over {HISTORY_DAYS} days, one every
                   {HISTORY_SAMPLE_S} s per sensor, from the simulators' own physics
                   ({history.seconds:.0f} s); the live meters continue from it
  records seeded   the week the history shows (the machines' own batches, in a closed
                   campaign "{CAMPAIGN}" per machine; material lots, a refrigerant top-up,
                   a fuel delivery):
{lines}
  indicators       {week}
""", flush=True)
