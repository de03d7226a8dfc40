"""End to end on real services: simulators → gateways → Mosquitto → collector → influxd → api.

Every component runs as it would in production (its own process, `dynamo …`), configured by the
Ariège site files; only the ports and passwords come from the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from dynamo.devservices import (
    InfluxdProcess,
    MosquittoProcess,
    free_port,
    stop_processes,
    wait_until,
)
from simulators import RunningSimulators, run_in_thread
from telemetry.datatypes import DataType
from telemetry.influx.client import InfluxClient
from telemetry.loader import load_gateway_config

REPO = Path(__file__).resolve().parents[2]
SITES = REPO / "firmware-config" / "sites"
MACHINES = ("dryer", "freezer", "packaging")


@dataclass
class Chain:
    sims: RunningSimulators
    api: httpx.Client
    influx: InfluxClient
    processes: dict[str, subprocess.Popen[bytes]]
    logs: Path


@pytest.fixture(scope="module")
def chain(influxd: InfluxdProcess, mosquitto: MosquittoProcess,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    workdir = tmp_path_factory.mktemp("chain")
    database = f"e2e_{uuid.uuid4().hex[:8]}"
    api_port = free_port()
    # A June morning in Ariège: the sun shines on the dryer's PV and collectors.
    sims = run_in_thread(machines=MACHINES, speed=60.0, seed=11,
                         start=datetime(2026, 6, 15, 8, 0, tzinfo=UTC))
    env = {
        **os.environ, **sims.env(),
        "DYNAMO_MQTT_HOST": mosquitto.host, "DYNAMO_MQTT_PORT": str(mosquitto.port),
        "DYNAMO_INFLUX_URL": influxd.url, "DYNAMO_INFLUX_DB": database,
        "DYNAMO_SITE_CONFIGS": str(SITES), "DYNAMO_SPOOL_DIR": str(workdir / "spool"),
        "DYNAMO_RAM_DIR": str(workdir / "ram"),
        **{f"DYNAMO_MQTT_PASSWORD_{m.upper()}_GW": mosquitto.users[f"{m}-gw"]
           for m in MACHINES},
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(name: str, *args: str, user: str | None = None) -> None:
        extra = {"DYNAMO_MQTT_USERNAME": user, "DYNAMO_MQTT_PASSWORD": mosquitto.users[user]} \
            if user else {}
        with (workdir / f"{name}.log").open("wb") as log:
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", "dynamo", *args], env={**env, **extra}, stdout=log,
                stderr=subprocess.STDOUT)

    spawn("collector", "collector", "run", "--dead-letters", str(workdir / "dead.sqlite"),
          "--client-id", f"collector-{database}", user="collector")
    for machine in MACHINES:
        spawn(f"{machine}-gw", "gateway", "run", "--config", str(SITES / "ariege" /
                                                                 f"{machine}.yaml"))
    # The api's records and tokens in the test's own database; its token made by the CLI.
    env["DYNAMO_API_DATABASE_URL"] = f"sqlite:///{workdir / 'api.sqlite3'}"
    token = subprocess.run(
        [sys.executable, "-m", "dynamo", "api", "token", "create", "--role", "evaluator",
         "--site", "ariege"], env=env, capture_output=True, text=True, timeout=60,
        check=True).stdout.strip()
    spawn("api", "api", "run", "--port", str(api_port), user="api")
    api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}/api/v1", timeout=10,
                       headers={"Authorization": f"Bearer {token}"})

    def healthy() -> bool:
        for name, process in processes.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} exited: {(workdir / f'{name}.log').read_text()}")
        try:
            return api.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    influx = InfluxClient(url=influxd.url, database=database)
    try:
        wait_until(healthy, timeout_s=60, what="the api to be healthy", interval_s=0.25)
        yield Chain(sims=sims, api=api, influx=influx, processes=processes, logs=workdir)
    finally:
        stop_processes(processes.values())
        api.close()
        influx.close()
        sims.stop()


def _good_times(chain: Chain, sensor: str) -> list[int]:
    series = chain.influx.query(
        f"SELECT value FROM readings WHERE sensor = '{sensor}' AND quality = 'good'")
    return [int(row["time"]) for s in series for row in s.rows()]


@pytest.mark.parametrize("machine,sensor", [
    ("freezer", "freezer.electric"),
    ("packaging", "packaging.electric"),
    ("dryer", "dryer.electric"),
    ("dryer", "dryer.pv_energy"),
])
def test_energy_matches_the_simulator_truth(chain: Chain, machine: str, sensor: str) -> None:
    wait_until(lambda: len(_good_times(chain, sensor)) >= 5, timeout_s=60,
               what=f"five readings of {sensor}", interval_s=0.25)
    times = _good_times(chain, sensor)
    start_ms, end_ms = times[0], times[-1]
    start = datetime.fromtimestamp(start_ms / 1000, UTC).isoformat()
    end = datetime.fromtimestamp(end_ms / 1000, UTC).isoformat()
    response = chain.api.get(f"/sites/ariege/equipment/{machine}/energy",
                             params={"start": start, "end": end})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"] == "counter_difference"
    [figure] = [s for s in body["sensors"] if s["sensor"] == sensor]
    config = chain.sims.gateway_config(machine)
    [declared] = [s for d in config.devices for s in d.sensors if s.id == sensor]
    variable = chain.sims.models[machine].variable_for(role=declared.role,
                                                       attributes=declared.attributes)
    assert variable is not None
    truth = chain.sims.truth(machine)
    expected = truth.value_at(variable, end_ms) - truth.value_at(variable, start_ms)
    assert expected > 0, "the simulated machine consumed nothing: the test would prove nothing"
    # A counter held in an integer register (the EM24's kWh x 10) reads in steps of its scale:
    # the difference of two readings can be off by one step, on top of the 0.5 % tolerance.
    device = next(d for d in config.devices if declared in d.sensors)
    point = config.point_of(device, declared)
    step = 0.0 if point.data_type in (DataType.FLOAT32, DataType.FLOAT64) \
        else abs(point.scale * declared.scale)
    assert figure["energy_kwh"] == pytest.approx(expected, rel=0.005, abs=step)
    assert figure["readings"] >= 3


@pytest.mark.parametrize("machine", MACHINES)
def test_latest_readings_match_what_the_simulator_serves(chain: Chain, machine: str) -> None:
    config = load_gateway_config(SITES / "ariege" / f"{machine}.yaml")
    sensors = {s.id: s for d in config.devices for s in d.sensors}
    # One step of each sensor's register (an integer register in tenths reads to 0.1), zero
    # for floats: readings may differ from the truth by that much and no more.
    steps = {s.id: 0.0 if config.point_of(d, s).data_type in (DataType.FLOAT32, DataType.FLOAT64)
             else abs(config.point_of(d, s).scale * s.scale)
             for d in config.devices for s in d.sensors}

    def complete() -> bool:
        body = chain.api.get(f"/sites/ariege/equipment/{machine}/latest").json()
        return {r["sensor"] for r in body["readings"]} == set(sensors)

    wait_until(complete, timeout_s=60, what=f"a reading of every {machine} sensor", interval_s=0.25)
    body = chain.api.get(f"/sites/ariege/equipment/{machine}/latest").json()
    truth = chain.sims.truth(machine)
    model = chain.sims.models[machine]
    for reading in body["readings"]:
        sensor = sensors[reading["sensor"]]
        assert reading["role"] == sensor.role
        assert reading["quality"] in ("good", "uncertain"), reading
        variable = model.variable_for(role=sensor.role, attributes=sensor.attributes,
                                      location=sensor.location)
        assert variable is not None, sensor.id
        at = int(datetime.fromisoformat(reading["time"]).timestamp() * 1000)
        # The device is read a few ms after the reading's timestamp: compare with the truth
        # over that instant (the range it took), allowing the registers' resolution.
        low, high = truth.window(variable, at, at + 250)
        slack = steps[sensor.id] + 1e-4 * max(abs(low), abs(high)) + 1e-6
        assert low - slack <= reading["value"] <= high + slack, (sensor.id, reading, low, high)


def test_equipment_list_and_health(chain: Chain) -> None:
    health = chain.api.get("/health").json()
    assert health["status"] == "ok" and health["influxdb"]["ok"] and health["broker"]["ok"]
    equipment = chain.api.get("/equipment").json()
    assert {(e["site"], e["id"], e["kind"]) for e in equipment} == {
        ("ariege", "dryer", "dryer"), ("ariege", "freezer", "freezer"),
        ("ariege", "packaging", "packaging")}
    assert chain.api.get("/sites/ariege/equipment/nope/latest").status_code == 404
    assert chain.api.get("/sites/ariege/equipment/dryer/energy",
                         params={"start": "2026-01-02T00:00:00",
                                 "end": "2026-01-01T00:00:00Z"}).status_code == 422


def test_gateways_announce_themselves(chain: Chain) -> None:
    def online() -> set[str]:
        series = chain.influx.query("SELECT last(online) FROM gateway_status GROUP BY gateway")
        return {s.tags["gateway"] for s in series if s.values[0][1] == 1}

    wait_until(lambda: online() == {f"{m}-gw" for m in MACHINES}, timeout_s=30,
               what="three gateways online", interval_s=0.25)
