"""The publisher: the gateway's one owner of MQTT. QoS 1, retained birth, last-will `offline`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from telemetry.mqtt import connect, make_client
from telemetry.payload import Status, Telemetry, encode
from telemetry.site import Broker
from telemetry.topics import status_topic, telemetry_topic

log = logging.getLogger(__name__)


class Publisher:
    """Publishes telemetry and status for one gateway.

    `on_acked(mid)` is called from paho's thread when the broker has acknowledged (PUBACK) the
    message that `publish_telemetry` returned `mid` for; `on_uplink(up)` when the connection
    to the central broker is made (True) or lost (False).
    """

    def __init__(
        self,
        *,
        broker: Broker,
        site: str,
        gateway: str,
        birth: Callable[[], Status],
        on_acked: Callable[[int], None] | None = None,
        on_uplink: Callable[[bool], None] | None = None,
    ) -> None:
        self.site = site
        self.gateway = gateway
        self._birth = birth
        self._on_acked = on_acked
        self._on_uplink = on_uplink
        self._broker = broker
        self.connected = threading.Event()
        self.connections = 0  # successful connections so far: a change means a new session
        self.lost_ms: int | None = None  # when the connection was last lost (wall clock)
        self._client = make_client(broker=broker, client_id=f"gw-{site}-{gateway}")
        will = Status(site=site, gateway=gateway, state="offline")
        self._client.will_set(status_topic(site, gateway), encode(will), qos=1, retain=True)
        self._client.on_connect = self._connected
        self._client.on_disconnect = self._disconnected
        self._client.on_publish = self._published

    def start(self) -> None:
        connect(self._client, self._broker)

    def stop(self) -> None:
        """Say `offline` ourselves (a clean stop sends no last will), then disconnect."""
        if self.connected.is_set():
            offline = Status(site=self.site, gateway=self.gateway, state="offline")
            info = self._client.publish(status_topic(self.site, self.gateway), encode(offline),
                                        qos=1, retain=True)
            info.wait_for_publish(timeout=2)
        self._client.disconnect()
        self._client.loop_stop()

    def publish_telemetry(self, message: Telemetry) -> int:
        """Queue one telemetry message at QoS 1; returns its message id."""
        topic = telemetry_topic(self.site, self.gateway, message.equipment)
        return self.publish_raw(topic, encode(message))

    def publish_raw(self, topic: str, payload: bytes) -> int:
        """Queue an encoded message (from the spool) at QoS 1; returns its message id."""
        return int(self._client.publish(topic, payload, qos=1).mid)

    def publish_status(self) -> None:
        self._client.publish(status_topic(self.site, self.gateway), encode(self._birth()),
                             qos=1, retain=True)

    def _connected(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                   _props: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        log.info("connected to the broker")
        self.connections += 1
        # The birth goes before any spooled message: its buffer_depth tells the central
        # alerting that a backlog (and maybe edge alerts) follows.
        self.publish_status()
        self.connected.set()
        if self._on_uplink is not None:
            self._on_uplink(True)

    def _disconnected(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                      _props: Any) -> None:
        if self.connected.is_set():
            self.lost_ms = int(time.time() * 1000)
        self.connected.clear()
        log.warning("disconnected from the broker: %s", reason)
        if self._on_uplink is not None:
            self._on_uplink(False)

    def _published(self, _client: mqtt.Client, _userdata: Any, mid: int, reason: Any,
                   _props: Any) -> None:
        if reason is not None and reason.is_failure:
            # The broker has the message and refuses it (e.g. its ACL): sending it again would
            # loop forever. It is logged, and counted by the broker.
            log.error("broker refused message %d: %s", mid, reason)
        if self._on_acked is not None:
            self._on_acked(mid)
