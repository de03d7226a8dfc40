"""Defence in depth: the collector stores only what the site configurations declare.

Against the suite's real Mosquitto and influxd. The suite's synthetic gateway `test-gw` may
publish under any site (tests/conftest.py), which is exactly what lets these tests try what
a broker with a wrong ACL would let through: each case must become a dead letter with its
reason, counted, and nothing of it may reach InfluxDB.

The site configuration (tests/conftest.py, write_gateway_config): site `{site}`, gateway
`test-gw`, equipment `dryer`, device `meter`, sensors `dryer.power` in W and `dryer.energy`
in kWh (the Eastron SDM630 template's units).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner

from collector import Collector, DeadLetterStore
from collector.admission import SiteConfigs, load_admission
from collector.metrics import registry_for
from collector.replay import replay
from dynamo.cli import main
from dynamo.devservices import MosquittoProcess, generated_acl, wait_until
from telemetry.influx.client import InfluxClient
from telemetry.site import Broker
from telemetry.topics import status_topic, telemetry_topic

GW = "test-gw"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def site() -> str:
    return f"adm{uuid.uuid4().hex[:8]}"


@pytest.fixture
def sites(tmp_path: Path, site: str, gateway_config: Callable[..., Path]) -> Path:
    """The configurations: ours, and a second site's gateway with other equipment."""
    folder = tmp_path / "sites"
    gateway_config(folder, site=site, gateway=GW)
    other = gateway_config(folder, site=f"{site}x", gateway="other-gw")
    other.write_text(other.read_text().replace("{id: dryer, kind: dryer}",
                                               "{id: freezer, kind: freezer}")
                     .replace("equipment: dryer", "equipment: freezer"))
    return folder


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoProcess]:
    """A broker of each test's own: the suite's may hold retained messages (statuses, acks)
    of other tests' throwaway sites, which a new collector receives and judges too."""
    users = {user: secrets.token_urlsafe(12) for user in ("collector", "test-gw")}
    acl = generated_acl(tmp_path / "broker", sites=REPO / "firmware-config" / "sites",
                        development_gateways=("test-gw",))
    process = MosquittoProcess(workdir=tmp_path / "broker", users=users, acl_file=acl)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def admitted(broker_for: Callable[[str], Broker], influx: InfluxClient, tmp_path: Path,
             sites: Path) -> Iterator[Collector]:
    """A collector judging by `sites`, reloaded when a file changes (checked every 0.1 s)."""
    service = Collector(broker=broker_for("collector"), influx=influx,
                        dead_letters=DeadLetterStore(tmp_path / "dead.sqlite"),
                        client_id=f"collector-{uuid.uuid4().hex[:6]}", flush_interval_s=0.05)
    configs = SiteConfigs(sites, on_change=service.set_admission, max_future_s=300)
    service.site_configs = configs
    stop_watching = configs.watch(0.1)
    service.start()
    assert service.connected.wait(10)
    time.sleep(0.2)  # let the SUBACK land before anything is published
    yield service
    stop_watching()
    service.stop()


def _telemetry(site: str, seq: int, *readings: dict[str, Any], equipment: str = "dryer",
               device: str = "meter", ts: int | None = None) -> bytes:
    return json.dumps({
        "v": 1, "site": site, "gateway": GW, "equipment": equipment, "device": device,
        "seq": seq, "ts": ts if ts is not None else int(time.time() * 1000) - 60_000 + seq,
        "readings": list(readings)}).encode()


def _power(value: float, unit: str = "W", sensor: str = "dryer.power") -> dict[str, Any]:
    return {"sensor": sensor, "value": value, "unit": unit}


def _publish(gateway: mqtt.Client, site: str, payload: bytes, equipment: str = "dryer") -> None:
    gateway.publish(telemetry_topic(site, GW, equipment), payload, qos=1).wait_for_publish(10)


def _rows(influx: InfluxClient) -> list[dict[str, Any]]:
    series = influx.query("SELECT value, unit, sensor, site FROM readings")
    return series[0].rows() if series else []


def _stored_marker(gateway: mqtt.Client, influx: InfluxClient, site: str, seq: int) -> None:
    """Publish an admitted message and wait until it is stored: one connection's messages
    arrive in order, so everything published before it has been judged."""
    _publish(gateway, site, _telemetry(site, seq, _power(float(seq))))
    wait_until(lambda: any(r["value"] == float(seq) for r in _rows(influx)), timeout_s=20,
               what=f"the marker {seq} in InfluxDB", interval_s=0.05)


def test_each_undeclared_or_implausible_message_is_set_aside_with_its_reason(
        admitted: Collector, gateway: mqtt.Client, influx: InfluxClient, site: str) -> None:
    in_an_hour = int(time.time() * 1000) + 3_600_000
    cases = [  # (topic site, equipment, payload, expected kind)
        (f"{site}-nowhere", "dryer", _telemetry(f"{site}-nowhere", 1, _power(1)), "undeclared"),
        # the other site's equipment, not this gateway's
        (site, "freezer", _telemetry(site, 2, _power(1), equipment="freezer"), "undeclared"),
        (site, "dryer", _telemetry(site, 3, _power(1), device="ghost"), "undeclared"),
        (site, "dryer", _telemetry(site, 4, _power(1), _power(1, sensor="dryer.ghost")),
         "undeclared"),
        (site, "dryer", _telemetry(site, 5, _power(1, unit="kg")), "unit"),
        (site, "dryer", _telemetry(site, 6, _power(1, unit="x,site=evil")), "unit"),
        (site, "dryer", _telemetry(site, 7, _power(1), ts=in_an_hour), "future"),
    ]
    for topic_site, equipment, payload, _kind in cases:
        _publish(gateway, topic_site, payload, equipment)
    status = {"v": 1, "site": f"{site}-nowhere", "gateway": GW, "state": "online"}
    gateway.publish(status_topic(f"{site}-nowhere", GW), json.dumps(status).encode(),
                    qos=1).wait_for_publish(10)
    _stored_marker(gateway, influx, site, 100)

    letters = admitted.dead_letters.entries(limit=100)
    expected = [kind for *_rest, kind in cases] + ["undeclared"]
    assert [letter.kind for letter in letters] == expected
    assert [letter.reason.split(":")[0] for letter in letters] == expected
    assert "'dryer.ghost' is not declared on device 'meter'" in letters[3].reason
    assert "configured in 'W'" in letters[4].reason
    assert "ahead of the collector's clock (bound 300 s)" in letters[6].reason
    reasons, _stored = admitted.counters.breakdowns()
    assert reasons == {"undeclared": 5, "unit": 2, "future": 1}
    # Only the marker reached InfluxDB.
    assert [(r["sensor"], r["value"]) for r in _rows(influx)] == [("dryer.power", 100.0)]
    scraped = _scrape(admitted)
    assert scraped['dynamo_collector_dead_letters_total{reason="unit"}'] == 2
    assert scraped["dynamo_collector_declared_gateways"] == 2


def test_a_convertible_unit_is_converted_and_counted(admitted: Collector, gateway: mqtt.Client,
                                                     influx: InfluxClient, site: str) -> None:
    # 1.5 kW = 1500 W; 2500 Wh = 2.5 kWh (the sensors' configured units).
    _publish(gateway, site, _telemetry(site, 1, _power(1.5, unit="kW"),
                                       {"sensor": "dryer.energy", "value": 2500, "unit": "Wh"}))
    wait_until(lambda: len(_rows(influx)) == 2, timeout_s=20, what="two points",
               interval_s=0.05)
    stored = {r["sensor"]: (r["value"], r["unit"]) for r in _rows(influx)}
    assert stored == {"dryer.power": (1500.0, "W"), "dryer.energy": (2.5, "kWh")}
    assert admitted.counters.units_converted == 2
    assert admitted.dead_letters.count() == 0


def test_a_reload_adds_a_sensor_without_restart(admitted: Collector, gateway: mqtt.Client,
                                                influx: InfluxClient, site: str,
                                                sites: Path) -> None:
    total = {"sensor": "dryer.total", "value": 7.0, "unit": "kWh"}
    _publish(gateway, site, _telemetry(site, 1, total))
    _stored_marker(gateway, influx, site, 2)
    assert [letter.kind for letter in admitted.dead_letters.entries()] == ["undeclared"]

    config = sites / site / f"{GW}.yaml"
    config.write_text(config.read_text() + "      - {id: dryer.total, point: total_energy_kwh,"
                                           " role: grid_import_energy}\n")
    assert admitted.site_configs is not None
    wait_until(lambda: admitted.site_configs is not None and admitted.site_configs.reloads == 1,
               timeout_s=10, what="the configuration's reload", interval_s=0.05)
    _publish(gateway, site, _telemetry(site, 3, total))
    wait_until(lambda: any(r["sensor"] == "dryer.total" for r in _rows(influx)), timeout_s=20,
               what="the new sensor's point", interval_s=0.05)
    assert admitted.dead_letters.count() == 1  # the one from before the reload, still there


def test_a_bad_configuration_is_refused_and_the_old_one_kept(
        admitted: Collector, gateway: mqtt.Client, influx: InfluxClient, site: str,
        sites: Path) -> None:
    configs = admitted.site_configs
    assert configs is not None
    config = sites / site / f"{GW}.yaml"
    good = config.read_text()
    config.write_text(good.replace("role: grid_power", "role: no_such_role"))
    wait_until(lambda: configs.failed_reloads == 1, timeout_s=10,
               what="the bad configuration's refusal", interval_s=0.05)
    assert configs.last_error is not None
    assert f"{GW}.yaml:" in configs.last_error and "unknown role 'no_such_role'" in \
        configs.last_error
    # Still judged by the old configuration: declared sensors stored, undeclared refused.
    _publish(gateway, site, _telemetry(site, 1, _power(1, sensor="dryer.ghost")))
    _stored_marker(gateway, influx, site, 2)
    assert [letter.kind for letter in admitted.dead_letters.entries()] == ["undeclared"]
    assert _scrape(admitted)["dynamo_collector_config_reload_failures_total"] == 1


def test_a_sensor_removed_by_a_reload_is_refused_on_the_fast_path_too(
        admitted: Collector, gateway: mqtt.Client, influx: InfluxClient, site: str,
        sites: Path) -> None:
    energy = {"sensor": "dryer.energy", "value": 1.0, "unit": "kWh"}
    for seq in (1, 2):  # the second goes through the fast path, which learnt the first
        _publish(gateway, site, _telemetry(site, seq, energy))
    wait_until(lambda: len(_rows(influx)) == 2, timeout_s=20, what="two points",
               interval_s=0.05)
    config = sites / site / f"{GW}.yaml"
    config.write_text("\n".join(line for line in config.read_text().splitlines()
                                if "dryer.energy" not in line) + "\n")
    configs = admitted.site_configs
    assert configs is not None
    wait_until(lambda: configs.reloads == 1, timeout_s=10, what="the reload", interval_s=0.05)
    _publish(gateway, site, _telemetry(site, 3, energy))
    _stored_marker(gateway, influx, site, 4)
    assert [letter.kind for letter in admitted.dead_letters.entries()] == ["undeclared"]


# -- the dead-letter store's bound ---------------------------------------------------------------

def test_the_bound_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    dropped: list[tuple[int, int]] = []
    store = DeadLetterStore(tmp_path / "d.sqlite", max_count=3, max_bytes=10_000,
                            on_drop=lambda count, size: dropped.append((count, size)))
    for i in range(5):
        store.add(topic="t", reason="r", payload=b"x" * 100 + bytes([48 + i]))
    # 5 letters, room for 3: letters 1 and 2 (101 bytes each) go, one at each add beyond 3.
    assert [letter.payload[-1:] for letter in store.entries()] == [b"2", b"3", b"4"]
    assert dropped == [(1, 101), (1, 101)]
    stats = store.stats()
    assert (stats.count, stats.bytes, stats.dropped, stats.dropped_bytes) == (3, 303, 2, 202)
    store.close()
    # By bytes: 250 bytes hold two letters of 101 bytes; a third drops the first.
    by_bytes = DeadLetterStore(tmp_path / "d.sqlite", max_count=100, max_bytes=250)
    by_bytes.add(topic="t", reason="r", payload=b"y" * 101)
    # 4 letters of 101 bytes = 404 > 250: the oldest two go (2 and 3), 4 and the new stay.
    assert [letter.payload[-1:] for letter in by_bytes.entries()] == [b"4", b"y"]
    assert by_bytes.stats().dropped == 4  # counted in the file, across openings


def test_a_full_store_drops_at_the_collector_and_the_metric_shows_it(
        broker_for: Callable[[str], Broker], influx: InfluxClient, tmp_path: Path,
        gateway: mqtt.Client) -> None:
    store = DeadLetterStore(tmp_path / "small.sqlite", max_count=2)
    service = Collector(broker=broker_for("collector"), influx=influx, dead_letters=store,
                        client_id=f"collector-{uuid.uuid4().hex[:6]}", flush_interval_s=0.05)
    service.start()
    try:
        assert service.connected.wait(10)
        time.sleep(0.2)
        site = f"adm{uuid.uuid4().hex[:8]}"
        for i in range(4):
            gateway.publish(telemetry_topic(site, GW, "dryer"), f"not json {i}".encode(), qos=1)
        wait_until(lambda: service.counters.dead_letters == 4, timeout_s=20,
                   what="four dead letters", interval_s=0.05)
        assert [letter.payload for letter in store.entries()] == [b"not json 2", b"not json 3"]
        scraped = _scrape(service)
        assert scraped["dynamo_collector_dead_letters_dropped_total"] == 2
        assert scraped["dynamo_collector_dead_letters_stored"] == 2
        assert scraped["dynamo_collector_dead_letters_capacity_ratio"] == 1.0
    finally:
        service.stop()


def _scrape(service: Collector) -> dict[str, float]:
    """The collector's metrics as Prometheus would read them: `name{labels}` → value."""
    out = {}
    for metric in registry_for(service).collect():
        for sample in metric.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def test_replay_judges_by_the_configurations_of_the_day(
        influx: InfluxClient, tmp_path: Path, site: str, sites: Path) -> None:
    store = DeadLetterStore(tmp_path / "d.sqlite")
    topic = telemetry_topic(site, GW, "dryer")
    in_ten_minutes = int(time.time() * 1000) + 600_000
    store.add(topic=topic, kind="undeclared", reason="undeclared: …",
              payload=_telemetry(site, 1, {"sensor": "dryer.total", "value": 7, "unit": "kWh"}))
    store.add(topic=topic, kind="future", reason="future: …",
              payload=_telemetry(site, 2, _power(5), ts=in_ten_minutes))
    report = replay(store=store, influx=influx, admission=load_admission(sites))
    assert report.written == [] and [r.split(":")[0] for r in report.kept.values()] == [
        "undeclared", "future"]
    config = sites / site / f"{GW}.yaml"
    config.write_text(config.read_text() + "      - {id: dryer.total, point: total_energy_kwh,"
                                           " role: grid_import_energy}\n")
    report = replay(store=store, influx=influx, admission=load_admission(sites))
    assert report.written == [1] and list(report.kept) == [2]  # its time has not come yet
    assert [(r["sensor"], r["value"]) for r in _rows(influx)] == [("dryer.total", 7.0)]


# -- the command line ------------------------------------------------------------------------------

def test_purge_by_age_and_reason_asks_first(tmp_path: Path) -> None:
    path = tmp_path / "dead.sqlite"
    store = DeadLetterStore(path)
    for kind in ("unit", "unit", "future"):
        store.add(topic="t", reason=f"{kind}: …", payload=b"{}", kind=kind)
    store.close()
    runner = CliRunner()
    base = ["collector", "dead-letters", "purge", "--dead-letters", str(path)]
    # Nothing is older than a day; then the confirmation is declined: both delete nothing.
    result = runner.invoke(main, [*base, "--older-than", "1d", "--yes"])
    assert result.exit_code == 0 and "no dead letter older than 1d" in result.output
    result = runner.invoke(main, [*base, "--reason", "unit"], input="n\n")
    assert result.exit_code == 1 and "delete 2 dead letter(s) of kind unit for good?" in \
        result.output
    assert DeadLetterStore(path).count() == 3
    result = runner.invoke(main, [*base, "--reason", "unit"], input="y\n")
    assert result.exit_code == 0 and "2 dead letter(s) deleted" in result.output
    assert [letter.kind for letter in DeadLetterStore(path).entries()] == ["future"]
    result = runner.invoke(main, [*base, "--older-than", "0s", "--yes"])
    assert result.exit_code == 0 and DeadLetterStore(path).count() == 0
    result = runner.invoke(main, [*base, "--older-than", "a week"])
    assert result.exit_code == 2 and "expected a whole number and s, m, h or d" in result.output


def test_the_running_collector_reloads_on_sighup_and_refuses_a_bad_start(
        broker_for: Callable[[str], Broker], influx: InfluxClient, gateway: mqtt.Client,
        tmp_path: Path, site: str, sites: Path) -> None:
    broker = broker_for("collector")
    env = {**os.environ, "DYNAMO_MQTT_HOST": broker.host, "DYNAMO_MQTT_PORT": str(broker.port),
           "DYNAMO_MQTT_USERNAME": "collector", "DYNAMO_MQTT_PASSWORD": broker.password or "",
           "DYNAMO_INFLUX_URL": influx.url, "DYNAMO_INFLUX_DB": influx.database,
           "DYNAMO_SITE_CONFIGS": str(sites), "DYNAMO_LOG_FORMAT": "text"}
    command = [sys.executable, "-m", "dynamo", "collector", "run", "--metrics-port", "0",
               "--client-id", f"collector-{site}", "--dead-letters", str(tmp_path / "d.sqlite"),
               "--config-check-interval", "3600"]  # only SIGHUP reloads here
    config = sites / site / f"{GW}.yaml"
    good = config.read_text()
    config.write_text(good.replace("role: grid_power", "role: no_such_role"))
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2
    assert f"{config}:" in refused.stderr and "unknown role 'no_such_role'" in refused.stderr
    config.write_text(good)
    log = (tmp_path / "collector.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        total = {"sensor": "dryer.total", "value": 7.0, "unit": "kWh"}
        seq = iter(range(1, 10**6))

        def stored_after_publishing() -> bool:
            _publish(gateway, site, _telemetry(site, next(seq), total))
            return any(r["sensor"] == "dryer.total" for r in _rows(influx))

        # Once the collector is up its dead letters appear: the sensor is not declared yet.
        wait_until(lambda: not stored_after_publishing() and _dead(tmp_path) > 0,
                   timeout_s=60, what="the collector's first refusal", interval_s=0.5)
        config.write_text(good + "      - {id: dryer.total, point: total_energy_kwh,"
                                 " role: grid_import_energy}\n")
        process.send_signal(signal.SIGHUP)
        wait_until(stored_after_publishing, timeout_s=30, what="the new sensor stored",
                   interval_s=0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log.close()
    assert "site configurations reloaded" in (tmp_path / "collector.log").read_text()


def _dead(tmp_path: Path) -> int:
    path = tmp_path / "d.sqlite"
    if not path.exists():
        return 0
    store = DeadLetterStore(path)
    try:
        return store.count()
    finally:
        store.close()
