"""The collector against a real Mosquitto and a real influxd."""

from __future__ import annotations

import uuid

import paho.mqtt.client as mqtt
import pytest

from collector.service import Collector
from dynamo.devservices import wait_until
from telemetry.influx.client import InfluxClient
from telemetry.payload import Quality, Reading, Telemetry, encode
from telemetry.topics import telemetry_topic


@pytest.fixture
def site() -> str:
    return f"s{uuid.uuid4().hex[:10]}"


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


def test_telemetry_reaches_influxdb(collector: Collector, gateway: mqtt.Client,
                                    influx: InfluxClient, site: str) -> None:
    for seq in range(20):
        gateway.publish(telemetry_topic(site, "test-gw", "dryer"),
                        encode(_message(site, seq, 100.0 + seq)), qos=1)
    wait_until(lambda: _count(influx, site) == 20, timeout_s=15,
               what="20 messages' points in InfluxDB", interval_s=0.05)
    rows = influx.query(f"SELECT value, quality, unit FROM readings WHERE site = '{site}' "
                        "AND sensor = 'dryer.energy'")[0].rows()
    assert [r["value"] for r in rows] == [100.0 + i for i in range(20)]
    assert {(r["quality"], r["unit"]) for r in rows} == {("good", "kWh")}
    bad = influx.query(f"SELECT reason FROM readings WHERE site = '{site}' AND quality = 'bad'")
    assert {r["reason"] for r in bad[0].rows()} == {"timeout"}


def test_redelivery_does_not_duplicate(collector: Collector, gateway: mqtt.Client,
                                       influx: InfluxClient, site: str) -> None:
    payload = encode(_message(site, 1, 5.0))
    for _ in range(3):
        gateway.publish(telemetry_topic(site, "test-gw", "dryer"), payload, qos=1)
    wait_until(lambda: collector.counters.messages >= 3 and collector.counters.points >= 6,
               timeout_s=15, what="the three deliveries at the collector", interval_s=0.05)
    assert _count(influx, site) == 1


@pytest.mark.parametrize("payload,reason", [
    (b"not json", "Invalid JSON"),
    (b'{"v": 1}', "Field required"),
    (b'{"v":1,"site":"x","gateway":"test-gw","equipment":"dryer","device":"d","seq":1,'
     b'"ts":1763700000000,"readings":[{"sensor":"a","value":1,"unit":"W"}]}', "differ"),
    (b'{"v":1,"site":"S","gateway":"test-gw","equipment":"dryer","device":"d","seq":1,'
     b'"ts":1763700000000,"readings":[{"sensor":"a","value":null,"unit":"W"}]}', "bad"),
])
def test_malformed_messages_are_dead_lettered(collector: Collector, gateway: mqtt.Client,
                                              influx: InfluxClient, site: str, payload: bytes,
                                              reason: str) -> None:
    gateway.publish(telemetry_topic(site, "test-gw", "dryer"),
                    payload.replace(b'"S"', f'"{site}"'.encode()), qos=1)
    wait_until(lambda: collector.counters.dead_letters == 1, timeout_s=15,
               what="the dead letter", interval_s=0.05)
    [letter] = collector.dead_letters.entries()
    assert reason in letter.reason
    assert letter.topic == telemetry_topic(site, "test-gw", "dryer")
    # and the collector still works
    gateway.publish(telemetry_topic(site, "test-gw", "dryer"),
                    encode(_message(site, 1, 1.0)), qos=1)
    wait_until(lambda: _count(influx, site) == 1, timeout_s=15,
               what="the good message's point in InfluxDB", interval_s=0.05)
