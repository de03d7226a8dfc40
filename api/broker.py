"""The api's watch on the broker: a connected MQTT client whose state `/health` reports, and
the latest status (birth or last will) of every gateway, from the retained status topics.

This is the api's one MQTT client: the console's overview reads gateway states from it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from telemetry.errors import PayloadError
from telemetry.mqtt import connect, make_client
from telemetry.payload import Status, decode_status
from telemetry.site import Broker
from telemetry.topics import Channel, parse_topic, subscription


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    """A gateway's latest status message and when the api received it."""

    site: str
    gateway: str
    online: bool
    received_ms: int
    status: Status


class BrokerMonitor:
    def __init__(self, *, broker: Broker, client_id: str = "dynamo-api") -> None:
        self._broker = broker
        self.connected = threading.Event()
        self.last_error = "not connected yet"
        self._lock = threading.Lock()
        self._gateways: dict[tuple[str, str], GatewayStatus] = {}
        self._client = make_client(broker=broker, client_id=client_id)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish
        self._refused: dict[int, str] = {}  # mid -> the broker's reason (MQTT 5 PUBACK)

    def start(self) -> None:
        connect(self._client, self._broker)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.last_error = f"refused: {reason}"
            return
        self.connected.set()
        # Subscribed again at every connection (clean start): the broker then sends every
        # gateway's retained status, so the table is whole again after an outage.
        client.subscribe(subscription(Channel.STATUS), qos=1)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        self.last_error = f"disconnected: {reason}"

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        topic = parse_topic(message.topic)
        if topic is None or topic.channel is not Channel.STATUS:
            return
        key = (topic.site, topic.gateway)
        if not message.payload:
            # An emptied retained status: the gateway was removed, nothing is known of it.
            with self._lock:
                self._gateways.pop(key, None)
            return
        try:
            status = decode_status(bytes(message.payload))
        except PayloadError:
            return  # not ours to judge: the collector dead-letters malformed messages
        if (status.site, status.gateway) != key:
            return  # a payload that disagrees with its topic is not believed
        found = GatewayStatus(site=topic.site, gateway=topic.gateway,
                              online=status.state == "online",
                              received_ms=int(time.time() * 1000), status=status)
        with self._lock:
            self._gateways[key] = found

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        if reason.is_failure:  # e.g. "Not authorized": the ACL does not let the api write there
            with self._lock:
                self._refused[mid] = str(reason)

    def publish(self, *, topic: str, payload: bytes, timeout_s: float = 5.0) -> str | None:
        """Publish QoS 1 and wait for the broker's PUBACK: None once it has the message, else
        why not (not connected, no answer in time, refused by the broker)."""
        if not self.connected.is_set():
            return f"broker {self.describe()}"
        info = self._client.publish(topic, payload, qos=1)
        try:
            info.wait_for_publish(timeout=timeout_s)
        except (RuntimeError, ValueError) as exc:  # paho: queue full, or not connected
            return f"broker: {exc}"
        if not info.is_published():
            return f"broker: no acknowledgement within {timeout_s:g} s"
        with self._lock:
            refused = self._refused.pop(info.mid, None)
        return None if refused is None else f"broker refused the message: {refused}"

    def gateway(self, *, site: str, gateway: str) -> GatewayStatus | None:
        """The latest status of a gateway, or None when the broker holds none for it."""
        with self._lock:
            return self._gateways.get((site, gateway))

    def gateways(self) -> list[GatewayStatus]:
        """Every gateway's latest status (the console's fleet page)."""
        with self._lock:
            return list(self._gateways.values())

    def describe(self) -> str:
        where = f"{self._broker.host}:{self._broker.port}"
        return f"connected to {where}" if self.connected.is_set() else \
            f"{where}: {self.last_error}"
