"""Local MQTT sensors: the one owner of the gateway's *local* broker connection.

Zigbee2MQTT bridges, Shelly relays and Tasmota plugs publish JSON on a broker beside the
gateway. Each device's template names a topic and the JSON fields that are its points; every
message received becomes one telemetry message, exactly like one Modbus poll.

A payload that is not JSON, or lacks a field, never stops anything: the message is counted in
`malformed` and its readings go out `bad` with the reason.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from gateway.poller import PollResult
from gateway.reading import make_reading
from telemetry.mqtt import connect, make_client
from telemetry.site import Device, GatewayConfig, Sensor
from telemetry.template import MqttField

log = logging.getLogger(__name__)


class FieldError(ValueError):
    """A JSON field is missing or not a number; the message says which and why."""


@dataclass(frozen=True, slots=True)
class _Subscription:
    topic: str
    device: Device
    sensors: tuple[tuple[Sensor, MqttField], ...]


def extract(payload: Any, field: MqttField) -> float:
    """The number at `field.path` in a decoded JSON payload (`$`: the payload itself)."""
    value = payload
    if field.path != "$":
        for part in field.path.split("."):
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                raise FieldError(f"field {field.path} missing")
    if isinstance(value, bool | str) and str(value) in field.states:
        return field.states[str(value)]
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise FieldError(f"field {field.path} is {value!r}, not a number") from None
    raise FieldError(f"field {field.path} is not a number")


def decode_fields(payload: bytes,
                  sensors: tuple[tuple[Sensor, MqttField], ...]) -> PollResult:
    """The readings one local message carries; never raises."""
    failures: dict[str, str] = {}
    raw: dict[str, float | str | bool] = {}
    bare = all(f.path == "$" for _, f in sensors)
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        document = None
        if bare:  # Shelly Gen1's and Tasmota's per-value topics carry a bare number or word
            with contextlib.suppress(UnicodeDecodeError):
                document = payload.decode().strip()
    if document is None:
        failures = {f.key: "malformed payload (not JSON)" for _, f in sensors}
    else:
        for _, field in sensors:
            try:
                raw[field.key] = extract(document, field)
            except FieldError as exc:
                failures[field.key] = str(exc)
    readings = tuple(make_reading(s, f, raw, failures) for s, f in sensors)
    return PollResult(readings, next(iter(failures.values()), "ok"), raw)


class LocalSensors:
    """Subscribes to the local broker and turns each message into a device's readings.

    `on_result(device, result)` is called from paho's thread.
    """

    def __init__(self, *, config: GatewayConfig,
                 on_result: Callable[[Device, PollResult], None]) -> None:
        self._subscriptions: list[_Subscription] = []
        for device in config.devices:
            template = config.templates[device.template]
            if template.protocol != "mqtt":
                continue
            fields = tuple((s, config.point_of(device, s)) for s in device.sensors)
            self._subscriptions.append(_Subscription(
                template.topic.replace("{name}", device.name), device,
                tuple((s, f) for s, f in fields if isinstance(f, MqttField))))
        self._on_result = on_result
        self._broker = config.local_broker
        self.malformed = 0
        self.connected = threading.Event()
        self._client: mqtt.Client | None = None
        if self._subscriptions and self._broker is not None:
            self._client = make_client(broker=self._broker,
                                       client_id=f"gw-{config.site}-{config.gateway}-local")
            self._client.on_connect = self._connected
            self._client.on_disconnect = lambda *_: self.connected.clear()
            self._client.on_message = self._received

    @property
    def devices(self) -> list[Device]:
        return [s.device for s in self._subscriptions]

    def start(self) -> None:
        if self._client is not None and self._broker is not None:
            connect(self._client, self._broker)

    def stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()

    def _connected(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("local broker refused the connection: %s", reason)
            return
        for topic in dict.fromkeys(s.topic for s in self._subscriptions):
            client.subscribe(topic, qos=1)
        self.connected.set()
        log.info("connected to the local broker: %d sensor topic(s)", len(self._subscriptions))

    def _received(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        for subscription in self._subscriptions:
            if not mqtt.topic_matches_sub(subscription.topic, message.topic):
                continue
            try:
                result = decode_fields(bytes(message.payload), subscription.sensors)
            except Exception:  # never let one message kill paho's thread
                log.exception("local message on %s", message.topic)
                continue
            if result.health != "ok":
                self.malformed += 1
                log.warning("local sensor %s: %s", subscription.device.id, result.health)
            self._on_result(subscription.device, result)
