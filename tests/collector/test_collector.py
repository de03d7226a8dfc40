"""The collector against a real Mosquitto and a real influxd."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from collector.deadletters import DeadLetterStore
from collector.service import Collector
from telemetry.influx.client import InfluxClient
from telemetry.mqtt import connect, make_client
from telemetry.payload import Quality, Reading, Telemetry, encode
from telemetry.site import Broker
from telemetry.topics import telemetry_topic


def _wait(condition: Callable[[], bool], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture
def site() -> str:
    return f"s{uuid.uuid4().hex[:10]}"


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


@pytest.fixture
def gateway_client(broker_for: Callable[[str], Broker]) -> Iterator[mqtt.Client]:
    broker = broker_for("test-gw")
    client = make_client(broker=broker, client_id=f"test-gw-{uuid.uuid4().hex[:6]}")
    connect(client, broker)
    deadline = time.monotonic() + 10
    while not client.is_connected() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield client
    client.disconnect()
    client.loop_stop()


def _message(site: str, seq: int, value: float) -> Telemetry:
    return Telemetry(site=site, gateway="test-gw", equipment="dryer", device="meter", seq=seq,
                     ts=1_763_700_000_000 + seq * 1000, readings=(
                         Reading(sensor="dryer.energy", value=value, unit="kWh"),
                         Reading(sensor="dryer.temp", value=None, unit="degC",
                                 quality=Quality.BAD, reason="timeout"),
                     ))


def _count(influx: InfluxClient, site: str) -> int:
    series = influx.query(f"SELECT count(value) FROM readings WHERE site = '{site}'")
    return int(series[0].values[0][1]) if series else 0


def test_telemetry_reaches_influxdb(collector: Collector, gateway_client: mqtt.Client,
                                    influx: InfluxClient, site: str) -> None:
    for seq in range(20):
        gateway_client.publish(telemetry_topic(site, "test-gw", "dryer"),
                               encode(_message(site, seq, 100.0 + seq)), qos=1)
    _wait(lambda: _count(influx, site) == 20)
    rows = influx.query(f"SELECT value, quality, unit FROM readings WHERE site = '{site}' "
                        "AND sensor = 'dryer.energy'")[0].rows()
    assert [r["value"] for r in rows] == [100.0 + i for i in range(20)]
    assert {(r["quality"], r["unit"]) for r in rows} == {("good", "kWh")}
    bad = influx.query(f"SELECT reason FROM readings WHERE site = '{site}' AND quality = 'bad'")
    assert {r["reason"] for r in bad[0].rows()} == {"timeout"}


def test_redelivery_does_not_duplicate(collector: Collector, gateway_client: mqtt.Client,
                                       influx: InfluxClient, site: str) -> None:
    payload = encode(_message(site, 1, 5.0))
    for _ in range(3):
        gateway_client.publish(telemetry_topic(site, "test-gw", "dryer"), payload, qos=1)
    _wait(lambda: collector.counters.messages >= 3 and collector.counters.points >= 6)
    assert _count(influx, site) == 1


@pytest.mark.parametrize("payload,reason", [
    (b"not json", "Invalid JSON"),
    (b'{"v": 1}', "Field required"),
    (b'{"v":1,"site":"x","gateway":"test-gw","equipment":"dryer","device":"d","seq":1,'
     b'"ts":1763700000000,"readings":[{"sensor":"a","value":1,"unit":"W"}]}', "differ"),
    (b'{"v":1,"site":"S","gateway":"test-gw","equipment":"dryer","device":"d","seq":1,'
     b'"ts":1763700000000,"readings":[{"sensor":"a","value":null,"unit":"W"}]}', "bad"),
])
def test_malformed_messages_are_dead_lettered(collector: Collector, gateway_client: mqtt.Client,
                                              influx: InfluxClient, site: str, payload: bytes,
                                              reason: str) -> None:
    gateway_client.publish(telemetry_topic(site, "test-gw", "dryer"),
                           payload.replace(b'"S"', f'"{site}"'.encode()), qos=1)
    _wait(lambda: collector.counters.dead_letters == 1)
    [letter] = collector.dead_letters.entries()
    assert reason in letter.reason
    assert letter.topic == telemetry_topic(site, "test-gw", "dryer")
    # and the collector still works
    gateway_client.publish(telemetry_topic(site, "test-gw", "dryer"),
                           encode(_message(site, 1, 1.0)), qos=1)
    _wait(lambda: _count(influx, site) == 1)
