"""The local mirror: every poll and the uplink state, on the gateway's *local* broker.

With `mirror_to_local: true`, the edge alerting process beside the gateway (`dynamo alerts
edge`, part of the alerting component) reads this instead of the central broker, which it
cannot reach when the uplink is down. Telemetry goes at QoS 0: the local broker is on loopback,
and a mirror that queued while the local broker is down would eat the Pi's memory (the spool,
not this, is the record). The uplink state is retained at QoS 1: `up` while the publisher is
connected to the central broker, `down` otherwise, and `unknown` as the last will.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt

from telemetry.mqtt import connect, make_client
from telemetry.payload import Uplink, encode
from telemetry.site import Broker
from telemetry.topics import uplink_topic

log = logging.getLogger(__name__)


class LocalMirror:
    """Publishes telemetry (as spooled) and the uplink state to the local broker."""

    def __init__(self, *, broker: Broker, site: str, gateway: str) -> None:
        self.site = site
        self.gateway = gateway
        self._broker = broker
        self._lock = threading.Lock()
        self._up = False
        self._topic = uplink_topic(site, gateway)
        self._client = make_client(broker=broker, client_id=f"gw-{site}-{gateway}-mirror")
        self._client.max_queued_messages_set(100)
        will = Uplink(site=site, gateway=gateway, state="unknown")
        self._client.will_set(self._topic, encode(will), qos=1, retain=True)
        self._client.on_connect = self._connected

    def start(self) -> None:
        connect(self._client, self._broker)

    def stop(self) -> None:
        """Say `unknown` ourselves (a clean stop sends no last will), then disconnect."""
        if self._client.is_connected():
            unknown = Uplink(site=self.site, gateway=self.gateway, state="unknown")
            self._client.publish(self._topic, encode(unknown), qos=1,
                                 retain=True).wait_for_publish(timeout=2)
        self._client.disconnect()
        self._client.loop_stop()

    def telemetry(self, topic: str, payload: bytes) -> None:
        """One spooled message, on the same topic as upstream; dropped if the broker is away."""
        self._client.publish(topic, payload, qos=0)

    def uplink(self, up: bool) -> None:
        """The publisher's connection to the central broker changed (any thread)."""
        with self._lock:
            self._up = up
            self._publish_uplink()

    def _publish_uplink(self) -> None:
        state = Uplink(site=self.site, gateway=self.gateway, state="up" if self._up else "down",
                       ts=int(time.time() * 1000))
        self._client.publish(self._topic, encode(state), qos=1, retain=True)

    def _connected(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("local broker refused the mirror: %s", reason)
            return
        with self._lock:
            self._publish_uplink()
        log.info("mirroring to the local broker")
