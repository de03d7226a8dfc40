"""Counters by their width (issue 14, item 4): a drop of an integer counter near its register's
top is a roll-over, anything else a reset; floats never roll over.

- the worked cases (`cases/counter-width/*/case.yaml`, the arithmetic written in each) against
  `counter_delta`, each across a period boundary too;
- the api over a real influxd: readings stored as the collector stores them, the register type
  the gateway sent preferred to the template's, drops named in the evidence;
- the real chain: a pymodbus device, the gateway, Mosquitto, the collector, influxd and the api.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from api.accounting.energy import counter_delta, wrap_of
from api.accounting.rollups import rollup_equipment
from api.sites import SiteRegistry
from api.store import ReadingsStore
from collector import Collector, DeadLetterStore
from collector.fastpath import FastPath
from collector.points import decode, telemetry_lines
from dynamo.devservices import wait_until
from gateway.reading import make_reading
from telemetry.datatypes import DataType, RegisterType
from telemetry.errors import PayloadError
from telemetry.influx.client import InfluxClient
from telemetry.loader import load_gateway_config
from telemetry.payload import NumberType, Reading, Telemetry
from telemetry.site import Broker, Sensor
from telemetry.template import MqttField, RegisterPoint

CASES_DIR = Path(__file__).parent / "cases" / "counter-width"
CASES = sorted(CASES_DIR.glob("*/case.yaml"))
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "gateway"))  # the gateway tests' Modbus server


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    # The relational layer is tested on both databases elsewhere; these tests need one.
    return f"sqlite:///{tmp_path / 'counters.sqlite3'}"


# --- worked cases ---------------------------------------------------------------------------

@pytest.mark.parametrize("case_file", CASES, ids=[c.parent.name for c in CASES])
def test_counter_width_case(case_file: Path) -> None:
    case = yaml.safe_load(case_file.read_text())
    samples = [(int(t), float(v)) for t, v in case["samples"]]
    wrap = wrap_of(case["data_type"], scale=case.get("scale", 1.0))
    assert (wrap is None) == (case["data_type"] in (None, "float32", "float64"))
    for period in case["periods"]:
        where = f"[{period['start_ms']}, {period['end_ms']})"
        result = counter_delta(samples, start_ms=period["start_ms"], end_ms=period["end_ms"],
                               wrap=wrap)
        assert result is not None, where
        expected = period["expected"]
        assert result.delta == pytest.approx(expected["delta"], abs=1e-9), where
        for key in ("rollovers", "resets", "readings", "start_exact", "end_exact"):
            if key in expected:
                assert getattr(result, key) == expected[key], (where, key)
        drops = [[d.kind, d.at_ms, d.before, d.after, d.increment] for d in result.drops]
        assert len(drops) == len(expected["drops"]), (where, drops)
        for got, want in zip(drops, expected["drops"], strict=True):
            assert got[:2] == want[:2], (where, got, want)
            assert got[2:] == pytest.approx(want[2:], abs=1e-9), (where, got, want)


def test_the_cases_cover_what_the_issue_asks() -> None:
    names = {c.parent.name for c in CASES}
    assert {"uint16-pulse-counter-wraps", "uint16-wrap-across-a-period-boundary", "uint32-wraps",
            "uint32-reset-is-not-a-wrap", "float32-never-wraps"} <= names
    text = {c.parent.name: c.read_text() for c in CASES}
    # each of the four asked for across a period boundary too: a case with two periods or more
    for name in ("uint16-wrap-across-a-period-boundary", "uint32-wraps",
                 "uint32-reset-is-not-a-wrap", "float32-never-wraps"):
        assert len(yaml.safe_load(text[name])["periods"]) >= 2, name


def test_a_wrapped_counter_adds_up_over_any_cut() -> None:
    """Cut anywhere between two readings, the two halves add up to the whole, and the
    roll-over is counted in exactly one of them."""
    samples = [(0, 65520.0), (10_000, 65530.0), (20_000, 4.0), (30_000, 14.0)]
    wrap = wrap_of("uint16")
    for cut in range(1_000, 30_000, 1_000):
        first = counter_delta(samples, start_ms=0, end_ms=cut, wrap=wrap)
        second = counter_delta(samples, start_ms=cut, end_ms=30_000, wrap=wrap)
        assert first is not None and second is not None
        assert first.delta + second.delta == pytest.approx(30.0), cut  # the whole, by hand
        assert first.rollovers + second.rollovers == 1, cut


# --- gateway and collector: the type in the reading and in InfluxDB ------------------------

def test_the_gateway_types_counters_only() -> None:
    pulses = RegisterPoint(key="pulses", register_type=RegisterType.INPUT, address=0,
                           data_type=DataType.UINT16, scale=0.01, unit="kWh")
    counter = Sensor(id="rig.pulses", point="pulses", role="electric_energy")
    # 65530 pulses x 0.01 = 655.30 kWh, read from a uint16
    reading = make_reading(counter, pulses, {"pulses": 65530}, {})
    assert reading.value == pytest.approx(655.30)
    assert reading.type == "uint16"
    gauge = Sensor(id="rig.power", point="pulses", role="electric_power", unit="W")
    assert make_reading(gauge, pulses, {"pulses": 5}, {}).type is None  # not a counter
    assert make_reading(counter, pulses, {}, {"pulses": "timeout"}).type is None  # no value
    # A local MQTT counter: its payload says nothing of the register, the configuration may.
    field = MqttField(key="total", path="total", unit="kWh")
    declared = Sensor(id="rig.mqtt", point="total", role="electric_energy",
                      attributes={"data_type": "uint32"})
    assert make_reading(declared, field, {"total": 12.0}, {}).type == "uint32"
    undeclared = Sensor(id="rig.mqtt", point="total", role="electric_energy")
    assert make_reading(undeclared, field, {"total": 12.0}, {}).type is None
    bogus = Sensor(id="rig.mqtt", point="total", role="electric_energy",
                   attributes={"data_type": "uint12"})
    assert make_reading(bogus, field, {"total": 12.0}, {}).type is None


def _message(readings: list[dict[str, Any]], seq: int = 1) -> bytes:
    return json.dumps({"site": "counterwidth", "gateway": "counterwidth-gw",
                       "equipment": "press", "device": "meter", "seq": seq,
                       "ts": T0_MS, "readings": readings}).encode()


TOPIC = "dynamo/v1/counterwidth/counterwidth-gw/telemetry/press"


def test_the_collector_stores_the_type_as_a_field_on_both_paths() -> None:
    typed = [{"sensor": "press.pulses", "value": 655.3, "unit": "kWh", "type": "uint16"},
             {"sensor": "press.power", "value": 12.5, "unit": "W"}]
    fast = FastPath()
    model = decode(TOPIC, _message(typed), received_ms=0, fast=fast)
    assert model.lines == [
        'readings,device=meter,equipment=press,gateway=counterwidth-gw,quality=good,'
        'sensor=press.pulses,site=counterwidth,unit=kWh dtype="uint16",value=655.3 ' + str(T0_MS),
        'readings,device=meter,equipment=press,gateway=counterwidth-gw,quality=good,'
        'sensor=press.power,site=counterwidth,unit=W value=12.5 ' + str(T0_MS)]
    # The fast path, taught by the model, takes the next message and writes the same lines.
    again = fast.lines(_message(typed, seq=2), site="counterwidth", gateway="counterwidth-gw",
                       equipment="press")
    assert again is not None and again[0] == "\n".join(model.lines)
    # Another type for the same sensor is another series key: the model judges it first.
    retyped = [{**typed[0], "type": "uint32"}, typed[1]]
    assert fast.lines(_message(retyped), site="counterwidth", gateway="counterwidth-gw",
                      equipment="press") is None
    # A type outside the list is refused by the model (a dead letter, never a crash).
    with pytest.raises(PayloadError, match="type"):
        decode(TOPIC, _message([{**typed[0], "type": "uint12"}]), received_ms=0, fast=fast)


# --- the api over influxd -------------------------------------------------------------------

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)


def _store(influx: InfluxClient, series: dict[str, tuple[NumberType | None, list[float]]], *,
           site: str = "counterwidth", gateway: str = "counterwidth-gw",
           equipment: str = "press", device: str = "meter", step_ms: int = 10_000) -> None:
    """Readings as the collector stores them (collector.points): one message per poll."""
    polls = len(next(iter(series.values()))[1])
    lines: list[str] = []
    for i in range(polls):
        readings = tuple(Reading(sensor=sensor, value=values[i], unit="kWh", type=kind)
                         for sensor, (kind, values) in series.items())
        lines += telemetry_lines(Telemetry(site=site, gateway=gateway, equipment=equipment,
                                           device=device, seq=i, ts=T0_MS + i * step_ms,
                                           readings=readings))
    influx.write(lines)


def test_the_api_takes_the_stored_type_else_the_template_and_names_every_drop(
        influx: InfluxClient, make_client: Callable[..., TestClient]) -> None:
    _store(influx, {
        # uint16 at 0.01 kWh per pulse, typed by the gateway: 0.10 + 0.10 + 0.10 = 0.30 kWh
        # (655.30 -> 0.04 wraps: 0.04 - 655.30 + 655.36 = 0.10)
        "press.pulses": ("uint16", [655.20, 655.30, 0.04, 0.14]),
        # stored without a type (an older gateway): the template's uint32 applies;
        # 5 + (5 - 4294967295 + 4294967296 = 6) + 5 = 16
        "press.energy32": (None, [4294967290, 4294967295, 5, 10]),
        # float32, typed: the drop is a reset; 10 + 4 + 10 = 24
        "press.float": ("float32", [65520, 65530, 4, 14]),
        # the template says float32, the gateway uint16: the gateway's word wins;
        # 10 + (4 - 65530 + 65536 = 10) + 10 = 30
        "press.retyped": ("uint16", [65520, 65530, 4, 14]),
    })
    stored = influx.query("SELECT dtype FROM readings WHERE sensor = 'press.pulses'")
    assert {row["dtype"] for s in stored for row in s.rows()} == {"uint16"}
    client = make_client(site_configs=CASES_DIR / "sites")
    span = {"start": T0.isoformat(), "end": datetime.fromtimestamp((T0_MS + 30_000) / 1000,
                                                                    UTC).isoformat()}
    response = client.get("/sites/counterwidth/equipment/press/energy", params=span)
    assert response.status_code == 200, response.text
    sensors = {s["sensor"]: s for s in response.json()["sensors"]}
    expected = {"press.pulses": (0.30, 1, 0), "press.energy32": (16.0, 1, 0),
                "press.float": (24.0, 0, 1), "press.retyped": (30.0, 1, 0)}
    for sensor, (kwh, rollovers, resets) in expected.items():
        got = sensors[sensor]
        assert got["energy_kwh"] == pytest.approx(kwh, abs=1e-9), sensor
        assert (got["rollovers"], got["resets"]) == (rollovers, resets), sensor
    [drop] = sensors["press.pulses"]["drops"]
    assert drop["kind"] == "rollover" and drop["sensor"] == "press.pulses"
    assert datetime.fromisoformat(drop["at"]) == datetime.fromtimestamp(
        (T0_MS + 20_000) / 1000, UTC)
    assert (drop["from"], drop["to"]) == pytest.approx((655.30, 0.04))
    assert drop["increment"] == pytest.approx(0.10)
    [reset] = sensors["press.float"]["drops"]
    assert (reset["kind"], reset["from"], reset["to"], reset["increment"]) == (
        "reset", 65530, 4, 4)

    # The same evidence in energy by source (what the indicators and the report rest on).
    response = client.get("/sites/counterwidth/equipment/press/energy-by-source", params=span)
    assert response.status_code == 200, response.text
    sources = {s["source"]: s for s in response.json()["sources"]}
    assert sources["electricity"]["energy_kwh"] == pytest.approx(0.30)
    assert sources["electricity"]["rollovers"] == 1
    assert [d["kind"] for d in sources["electricity"]["drops"]] == ["rollover"]
    assert sources["grid_import"]["energy_kwh"] == pytest.approx(16.0)
    assert (sources["pv"]["energy_kwh"], sources["pv"]["resets"]) == (pytest.approx(24.0), 1)
    assert [(d["sensor"], d["kind"]) for d in sources["pv"]["drops"]] == [
        ("press.float", "reset")]
    assert sources["solar_heat"]["energy_kwh"] == pytest.approx(30.0)

    # The evaluation report's coverage section: a roll-overs column, each drop named (Paris
    # time, UTC+1 in March: the roll-over seen at 10:00:20Z is 11:00:20).
    report = client.get("/sites/counterwidth/reports/evaluation",
                        params={**span, "format": "html"})
    assert report.status_code == 200, report.text
    assert "<th>Tours de compteur</th>" in report.text
    assert ("press.pulses : tour de compteur le 2026-03-02 11:00:20 (655,30 → 0,04 ; 0,10 "
            "comptés)") in report.text
    assert ("press.float : remise à zéro le 2026-03-02 11:00:20 (65\u202f530,00 → 4,00 ; "
            "compté depuis zéro : 4,00)") in report.text  # a narrow no-break space in 65 530


def test_a_roll_over_in_the_hourly_rollups(influx: InfluxClient,
                                           make_client: Callable[..., TestClient]) -> None:
    """Long periods read the hourly rollups: the roll-over is counted there too, in the hour
    the counter crossed its top, and summed back by the api."""
    # 16-bit pulses at 0.01 kWh, read every 20 min from 10:00 to 12:00.
    _store(influx, {"press.pulses": ("uint16", [655.00, 655.20, 0.04, 0.24, 0.44, 0.64, 0.84])},
           step_ms=1_200_000)
    # hour 10:00-11:00: 655.00 -> 655.20: +0.20; -> 0.04 at 10:40: wrapped 0.04 - 655.20 +
    #   655.36 = 0.20; -> 0.24 at 11:00: +0.20; 0.60 kWh, one roll-over
    # hour 11:00-12:00: 0.24 -> 0.44 -> 0.64 -> 0.84: 0.60 kWh
    registry = SiteRegistry.load(CASES_DIR / "sites")
    equipment = registry.get("counterwidth", "press")
    assert equipment is not None
    rollup_equipment(eq=equipment, store=ReadingsStore(influx), start=T0,
                     end=T0 + timedelta(hours=2), around=timedelta(hours=1),
                     max_gap=timedelta(minutes=30), bands={})
    rows = influx.query("SELECT energy_kwh, rollovers, resets FROM energy_hourly"
                        " WHERE source = 'electricity'")
    found = {int(r["time"]): (r["energy_kwh"], r["rollovers"], r["resets"])
             for s in rows for r in s.rows()}
    assert found == {T0_MS: (pytest.approx(0.60), 1, 0),
                     T0_MS + 3_600_000: (pytest.approx(0.60), 0, 0)}
    # Over 32 days the api sums the rollups: 0.60 + 0.60 = 1.20 kWh, one roll-over.
    client = make_client(site_configs=CASES_DIR / "sites")
    response = client.get("/sites/counterwidth/equipment/press/energy-by-source", params={
        "start": T0.replace(hour=0).isoformat(),
        "end": (T0.replace(hour=0) + timedelta(days=32)).isoformat()})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["evidence"] == "hourly rollups"
    [electricity] = [s for s in body["sources"] if s["source"] == "electricity"]
    assert electricity["energy_kwh"] == pytest.approx(1.20)
    assert (electricity["rollovers"], electricity["resets"]) == (1, 0)


# --- the real chain -------------------------------------------------------------------------

@pytest.fixture
def collector(broker_for: Callable[[str], Broker], influx: InfluxClient,
              tmp_path: Path) -> Iterator[Collector]:
    service = Collector(broker=broker_for("collector"), influx=influx,
                        dead_letters=DeadLetterStore(tmp_path / "dead.sqlite"),
                        client_id=f"collector-{uuid.uuid4().hex[:6]}", flush_interval_s=0.05)
    service.start()
    assert service.connected.wait(10)
    time.sleep(0.2)  # let the SUBACK land before anything is published
    yield service
    service.stop()


def test_the_register_type_travels_from_the_device_to_the_api(
        tmp_path: Path, influx: InfluxClient, broker_for: Callable[[str], Broker],
        collector: Collector, make_client: Callable[..., TestClient]) -> None:
    """A uint16 pulse counter on a pymodbus device wraps; the gateway reads it with its
    template, the type goes over MQTT, the collector stores it, and the api counts a roll-over
    even though the api's own copy of the template calls the register float32 — so the 0.30
    kWh can only come from the type that travelled (the template alone would give 0.24)."""
    from gwkit import ModbusTestServer, running, write_config

    site = f"w{uuid.uuid4().hex[:10]}"
    device = ModbusTestServer().start()
    try:
        gateway_templates = CASES_DIR / "templates"
        config_file = write_config(
            tmp_path / "gw.yaml", broker=broker_for("test-gw"),
            spool_dir=tmp_path / "spool", templates=gateway_templates, site=site, devices=[{
                "id": "meter", "template": "counter-width-meter", "equipment": "rig",
                "connection": {"type": "tcp", "host": "127.0.0.1", "port": device.port},
                "unit_id": device.unit_id, "poll_interval_s": 0.2, "timeout_s": 1,
                "retries": 0, "backoff_max_s": 1,
                "sensors": [{"id": "rig.pulses", "point": "pulses_kwh",
                             "role": "electric_energy"}]}])
        # The api's configuration: the same site, with a template that calls the register
        # float32 (a template edited since, say).
        api_templates = tmp_path / "api-templates"
        api_templates.mkdir()
        text = (gateway_templates / "counter-width-meter.yaml").read_text()
        retyped = text.replace("data_type: uint16, scale: 0.01", "data_type: float32, scale: 0.01")
        assert retyped != text
        (api_templates / "counter-width-meter.yaml").write_text(retyped)
        api_sites = tmp_path / "api-sites"
        api_sites.mkdir()
        api_config: dict[str, Any] = yaml.safe_load(config_file.read_text())
        api_config["template_dirs"] = [str(api_templates)]
        (api_sites / "gw.yaml").write_text(yaml.safe_dump(api_config, sort_keys=False))

        def stored() -> list[tuple[int, float, str | None]]:
            rows = influx.query(f"SELECT value, dtype FROM readings WHERE site = '{site}'"
                                " AND sensor = 'rig.pulses' AND quality = 'good'")
            return [(int(r["time"]), float(r["value"]), r["dtype"]) for s in rows
                    for r in s.rows()]

        def serve(pulses: int) -> int:
            """Set the register and wait until a reading of it is stored; its time (ms)."""
            device.set_registers("input", 0, [pulses])
            value = pulses * 0.01
            wait_until(lambda: any(abs(v - value) < 1e-9 for _, v, _ in stored()),
                       timeout_s=60, what=f"a stored reading of {pulses} pulses",
                       interval_s=0.1)
            return min(t for t, v, _ in stored() if abs(v - value) < 1e-9)

        with running(load_gateway_config(config_file)):
            # 65520 -> 65530 -> 4 -> 14 pulses: 10 + (4 - 65530 + 65536 = 10) + 10 = 30 pulses
            # = 0.30 kWh at 0.01 kWh per pulse
            times = [serve(p) for p in (65520, 65530, 4, 14)]
            first = times[0]
            last = max(t for t, v, _ in stored() if abs(v - 0.14) < 1e-9)
        assert {kind for _, _, kind in stored()} == {"uint16"}
        client = make_client(site_configs=api_sites)
        # From the first reading of 65520 to the last of 14: readings in between are at 65520,
        # 65530, 4 or 14 only, so the increase is exactly the 30 pulses.
        response = client.get(f"/sites/{site}/equipment/rig/energy", params={
            "start": datetime.fromtimestamp(first / 1000, UTC).isoformat(),
            "end": datetime.fromtimestamp((last + 1) / 1000, UTC).isoformat()})
        assert response.status_code == 200, response.text
        [figure] = response.json()["sensors"]
        assert figure["energy_kwh"] == pytest.approx(0.30, abs=1e-9)
        assert (figure["rollovers"], figure["resets"]) == (1, 0)
        [drop] = figure["drops"]
        assert (drop["kind"], drop["from"], drop["to"]) == ("rollover", pytest.approx(655.30),
                                                            pytest.approx(0.04))
        assert times == sorted(times)
    finally:
        device.stop()
