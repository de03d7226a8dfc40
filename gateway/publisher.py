"""The publisher: the gateway's one owner of MQTT. QoS 1, retained birth, last-will `offline`.

It also listens to the collector's end-to-end acknowledgement of this gateway (retained, on
`dynamo/v1/{site}/ack/{gateway}`, collector/acks.py): what is stored in InfluxDB, which alone
lets the spool forget a message. The broker's PUBACK only paces the sending.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from telemetry.errors import PayloadError
from telemetry.mqtt import connect, make_client
from telemetry.payload import Ack, Status, Telemetry, decode_ack, encode
from telemetry.site import Broker
from telemetry.topics import ack_topic, status_topic, telemetry_topic

log = logging.getLogger(__name__)


class Publisher:
    """Publishes telemetry and status for one gateway.

    `on_acked(mid)` is called from paho's thread when the broker has accepted (PUBACK) the
    message that `publish_telemetry` returned `mid` for; `on_refused(mid, reason)` when it
    refused it (reason code >= 0x80: "0x87 Not authorized"); `on_stored(ack)` when the
    collector's end-to-end acknowledgement arrives; `on_uplink(up)` when the connection to the
    central broker is made (True) or lost (False).
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
        on_refused: Callable[[int, str], None] | None = None,
        on_stored: Callable[[Ack], None] | None = None,
    ) -> None:
        self.site = site
        self.gateway = gateway
        self._birth = birth
        self._on_acked = on_acked
        self._on_uplink = on_uplink
        self._on_refused = on_refused
        self._on_stored = on_stored
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
        self._client.on_message = self._message

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
        # The retained ack arrives at once: what the collector stored while we were away.
        client.subscribe(ack_topic(self.site, self.gateway), qos=1)
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
            # The broker refuses the message (e.g. its ACL): it stays in the spool, counted by
            # reason and shown in the status, and is tried again (an ACL can be fixed).
            label = f"0x{int(reason.value):02x} {reason.getName()}"
            log.error("broker refused message %d: %s", mid, label)
            if self._on_refused is not None:
                self._on_refused(mid, label)
            return
        if self._on_acked is not None:
            self._on_acked(mid)

    def _message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic != ack_topic(self.site, self.gateway):
            return
        try:
            ack = decode_ack(bytes(message.payload))
        except PayloadError as exc:
            log.error("ignoring a malformed end-to-end ack: %s", exc.reason)
            return
        if (ack.site, ack.gateway) != (self.site, self.gateway):
            log.error("ignoring an end-to-end ack for %s/%s", ack.site, ack.gateway)
            return
        if self._on_stored is not None:
            self._on_stored(ack)
