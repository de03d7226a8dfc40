"""The repository's broker security (firmware-config/broker/acl) on the real Mosquitto.

No anonymous access, no wrong password, each gateway writes only below its own prefix and reads
only its own, the collector reads everything.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from dynamo.devservices import MosquittoProcess, wait_until
from telemetry.mqtt import connect, make_client
from telemetry.site import Broker
from telemetry.topics import telemetry_topic


def _connack(mosquitto: MosquittoProcess, username: str | None, password: str | None) -> Any:
    """The broker's CONNACK reason code for these credentials."""
    answers: list[Any] = []
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                         client_id=f"probe-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5)
    if username is not None:
        client.username_pw_set(username, password)
    client.on_connect = lambda _c, _u, _f, reason, _p: answers.append(reason)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    try:
        wait_until(lambda: bool(answers), timeout_s=15, what="the CONNACK", interval_s=0.05)
    finally:
        client.disconnect()
        client.loop_stop()
    return answers[0]


def test_anonymous_client_is_refused(mosquitto: MosquittoProcess) -> None:
    reason = _connack(mosquitto, None, None)
    assert reason.is_failure and reason.value in (0x86, 0x87)  # bad credentials / not authorised


def test_wrong_password_is_refused(mosquitto: MosquittoProcess) -> None:
    reason = _connack(mosquitto, "dryer-gw", "not-the-password")
    assert reason.is_failure and reason.value in (0x86, 0x87)
    assert not _connack(mosquitto, "dryer-gw", mosquitto.users["dryer-gw"]).is_failure


class _Listener:
    """A client subscribed to everything, recording what the broker lets it read."""

    def __init__(self, broker: Broker, topic_filter: str) -> None:
        self.topics: list[str] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = make_client(broker=broker, client_id=f"l-{uuid.uuid4().hex[:6]}")
        self.client.on_message = self._message
        self.client.on_connect = lambda c, _u, _f, _r, _p: c.subscribe(topic_filter, qos=1)
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        connect(self.client, broker)
        assert self._subscribed.wait(15)

    def _message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.topics.append(message.topic)

    def seen(self) -> list[str]:
        with self._lock:
            return list(self.topics)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class _Publisher:
    """A gateway's client, recording each PUBACK's reason code (MQTT 5 reports refusals)."""

    def __init__(self, broker: Broker) -> None:
        self.acks: dict[int, Any] = {}
        self.client = make_client(broker=broker, client_id=f"p-{uuid.uuid4().hex[:6]}")
        self.client.on_publish = self._acked
        connect(self.client, broker)
        wait_until(self.client.is_connected, timeout_s=15,
                   what=f"{broker.username}'s connection", interval_s=0.05)

    def _acked(self, _c: mqtt.Client, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        self.acks[mid] = reason

    def publish(self, topic: str) -> Any:
        info = self.client.publish(topic, b"{}", qos=1)
        wait_until(lambda: info.mid in self.acks, timeout_s=15, what=f"the PUBACK of {topic}",
                   interval_s=0.05)
        return self.acks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def site() -> str:
    return f"acl{uuid.uuid4().hex[:8]}"


@pytest.fixture
def collector_listener(broker_for: Callable[[str], Broker], site: str) -> Iterator[_Listener]:
    listener = _Listener(broker_for("collector"), f"dynamo/v1/{site}/#")
    yield listener
    listener.close()


def test_gateway_writes_only_below_its_own_prefix(broker_for: Callable[[str], Broker],
                                                  collector_listener: _Listener,
                                                  site: str) -> None:
    dryer = _Publisher(broker_for("dryer-gw"))
    try:
        own = dryer.publish(telemetry_topic(site, "dryer-gw", "dryer"))
        other = dryer.publish(telemetry_topic(site, "freezer-gw", "freezer"))
        outside = dryer.publish(f"elsewhere/{site}")
        last = dryer.publish(telemetry_topic(site, "dryer-gw", "dryer") + "-end")
    finally:
        dryer.close()
    assert not own.is_failure and not last.is_failure
    assert other.is_failure and other.value == 0x87  # Not authorized
    assert outside.is_failure
    # The collector reads everything it may: its messages arrive, the refused ones never do.
    wait_until(lambda: telemetry_topic(site, "dryer-gw", "dryer-end") in collector_listener.seen(),
               timeout_s=15, what="the last message at the collector", interval_s=0.05)
    assert collector_listener.seen() == [telemetry_topic(site, "dryer-gw", "dryer"),
                                         telemetry_topic(site, "dryer-gw", "dryer-end")]


def test_collector_reads_every_gateway_and_gateways_only_their_own(
        broker_for: Callable[[str], Broker], collector_listener: _Listener, site: str) -> None:
    # A gateway asks for everything; the broker delivers only its own prefix.
    snooping = _Listener(broker_for("freezer-gw"), f"dynamo/v1/{site}/#")
    publishers = {gw: _Publisher(broker_for(gw)) for gw in ("dryer-gw", "freezer-gw")}
    try:
        for gw, publisher in publishers.items():
            assert not publisher.publish(telemetry_topic(site, gw, "x")).is_failure
        expected = {telemetry_topic(site, gw, "x") for gw in publishers}
        wait_until(lambda: set(collector_listener.seen()) == expected, timeout_s=15,
                   what="both gateways' messages at the collector", interval_s=0.05)
        wait_until(lambda: telemetry_topic(site, "freezer-gw", "x") in snooping.seen(),
                   timeout_s=15, what="the freezer's own message at the snooper",
                   interval_s=0.05)
        time.sleep(0.3)  # the dryer's message would have reached the snooper by now
        assert snooping.seen() == [telemetry_topic(site, "freezer-gw", "x")]
    finally:
        for publisher in publishers.values():
            publisher.close()
        snooping.close()
