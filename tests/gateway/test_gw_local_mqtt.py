"""Local MQTT sensors on real brokers: the worked examples of firmware-config/examples
(Zigbee2MQTT, Shelly Gen2, Tasmota) published on a local Mosquitto, read by the gateway and
forwarded to the central one."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from gwkit import REPO, Subscriber, broker_settings, running
from paho.mqtt.enums import CallbackAPIVersion

from dynamo.devservices import MosquittoProcess, wait_until
from gateway.listener import decode_fields, extract
from telemetry.loader import load_gateway_config
from telemetry.site import Sensor
from telemetry.template import MqttField

EXAMPLES = REPO / "firmware-config" / "examples"
PAYLOADS = sorted((EXAMPLES / "payloads").glob("*.json"))


@pytest.fixture
def local_broker(tmp_path: Path) -> Iterator[MosquittoProcess]:
    """The broker beside the gateway, where any local device may publish."""
    acl = tmp_path / "local.acl"
    acl.write_text("user local-sensors\ntopic readwrite #\n")
    process = MosquittoProcess(workdir=tmp_path / "local",
                               users={"local-sensors": secrets.token_urlsafe(12)}, acl_file=acl)
    process.start()
    yield process
    process.stop()


def _publisher(broker: MosquittoProcess) -> mqtt.Client:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                         client_id=f"device-{uuid.uuid4().hex[:6]}")
    client.username_pw_set("local-sensors", broker.users["local-sensors"])
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def test_worked_examples_reach_the_central_broker(
        tmp_path: Path, mosquitto: MosquittoProcess, local_broker: MosquittoProcess,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "DYNAMO_SPOOL_DIR": str(tmp_path / "spool"),
        "DYNAMO_RAM_DIR": str(tmp_path / "ram"),
        "DYNAMO_MQTT_HOST": mosquitto.host,
        "DYNAMO_MQTT_PORT": str(mosquitto.port),
        "DYNAMO_MQTT_PASSWORD": mosquitto.users["test-gw"],
        "DYNAMO_LOCAL_MQTT_HOST": local_broker.host,
        "DYNAMO_LOCAL_MQTT_PORT": str(local_broker.port),
        "DYNAMO_LOCAL_MQTT_PASSWORD": local_broker.users["local-sensors"],
    }.items():
        monkeypatch.setenv(name, value)
    config = load_gateway_config(EXAMPLES / "local-sensors.yaml")
    examples = [json.loads(p.read_text()) for p in PAYLOADS]
    assert len(examples) >= 4
    subscriber = Subscriber(broker=broker_settings(mosquitto, "collector"),
                            topic=f"dynamo/v1/{config.site}/{config.gateway}/telemetry/+")
    device = _publisher(local_broker)
    try:
        with running(config) as gateway:
            wait_until(gateway.local.connected.is_set, timeout_s=30, what="the local broker")
            for example in examples:
                device.publish(example["topic"], json.dumps(example["payload"]), qos=1)
            device.publish("zigbee2mqtt/coldroom_climate", b"{not json", qos=1)

            def readings() -> dict[str, list[dict[str, Any]]]:
                out: dict[str, list[dict[str, Any]]] = {}
                for message in subscriber.telemetry():
                    for reading in message["readings"]:
                        out.setdefault(reading["sensor"], []).append(reading)
                return out

            expected = {k: v for e in examples for k, v in e["expected"].items()}
            wait_until(lambda: set(expected) <= set(readings())
                       and len(readings()["coldroom.air_temp"]) >= 2, timeout_s=30,
                       what="every example's readings")
            assert gateway.local.malformed == 1
        got = readings()
        # Judge each example by its own reading: under load the malformed message's bad
        # reading may reach the broker before or after the good one.
        first_with_value = {s: next(r for r in got[s] if r.get("value") is not None)
                            for s in expected}
        for sensor, value in expected.items():
            assert first_with_value[sensor]["value"] == pytest.approx(value), sensor
        uncertain = {s for e in examples for s in e.get("uncertain", [])}
        for sensor in expected:
            quality = first_with_value[sensor]["quality"]
            assert quality == ("uncertain" if sensor in uncertain else "good"), (sensor, quality)
        # The malformed message was set aside as bad readings, with the reason; no crash.
        assert {"sensor": "coldroom.air_temp", "unit": "degC", "quality": "bad",
                "reason": "malformed payload (not JSON)"} in got["coldroom.air_temp"]
    finally:
        device.disconnect()
        device.loop_stop()
        subscriber.close()


@pytest.mark.parametrize("payload,path,states,expected", [
    ({"a": {"b": [1, {"c": 2.5}]}}, "a.b.1.c", {}, 2.5),
    (21.5, "$", {}, 21.5),
    ("ON", "$", {"ON": 1, "OFF": 0}, 1.0),
    ({"contact": True}, "contact", {"True": 0, "False": 1}, 0.0),
    ({"output": False}, "output", {}, 0.0),
    ({"v": "12.5"}, "v", {}, 12.5),
])
def test_field_paths_and_states(payload: Any, path: str, states: dict[str, float],
                                expected: float) -> None:
    assert extract(payload, MqttField(key="k", path=path, states=states)) == expected


def test_a_missing_field_is_bad_and_the_others_are_kept() -> None:
    sensors = ((Sensor(id="s.t", point="t", role="ambient_temp"),
                MqttField(key="t", path="temperature", unit="degC")),
               (Sensor(id="s.h", point="h", role="ambient_humidity"),
                MqttField(key="h", path="humidity", unit="percent")))
    result = decode_fields(b'{"temperature": "warm", "humidity": 40}', sensors)
    temperature, humidity = result.readings
    assert (temperature.quality, temperature.reason) == (
        "bad", "field temperature is 'warm', not a number")
    assert (humidity.value, humidity.quality) == (40.0, "good")
