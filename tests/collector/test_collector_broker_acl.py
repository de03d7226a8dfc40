"""The generated broker ACL (`dynamo broker acl`) on the real Mosquitto.

A broker of this module's own runs the ACL generated from two sites' configurations
(north: north-a, north-b; south: south-a). Every attempt to step outside one's own
`dynamo/v1/{site}/{gateway}/#` is denied: anonymous, wrong password, a gateway publishing or
reading under another site or another gateway of its site, `$SYS`, overwriting another
gateway's retained status. Publishes use MQTT 5, so a refusal is a PUBACK with reason code 0x87
(not authorised), and a reader allowed everything (the collector) must receive nothing of it.

The tests take the broker through `endpoint`, parametrised by listener: "plain" here. A TLS
listener adds an entry to LISTENERS: a function that starts a broker for the ACL and users and
returns an Endpoint (a subclass whose `settings` gives each user its client certificate, and
`None` a client without one) and the function that stops it; every test then runs on it too.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from dynamo.devservices import MosquittoProcess, generated_acl, wait_until
from telemetry.mqtt import connect, make_client
from telemetry.site import Broker
from telemetry.topics import status_topic, telemetry_topic

NOT_AUTHORISED = 0x87  # PUBACK reason codes below 0x80 are successes (0x10: no subscriber)
SITES = {"north": ("north-a", "north-b"), "south": ("south-a",)}
USERS = ("collector", "healthcheck", "north-a", "north-b", "south-a")


@dataclass
class Endpoint:
    """A running broker with the generated ACL, reached through one listener."""

    broker: Broker  # host, port, TLS settings; no user
    passwords: dict[str, str]

    def settings(self, user: str | None, password: str | None = None) -> Broker:
        """Connection settings for `user` (its password unless `password` says otherwise)."""
        if user is None:
            return self.broker
        return self.broker.model_copy(update={
            "username": user, "password": self.passwords[user] if password is None else password})


def _plain(workdir: Path, acl: Path,
           passwords: dict[str, str]) -> tuple[Endpoint, Callable[[], None]]:
    process = MosquittoProcess(workdir=workdir, users=passwords, acl_file=acl)
    process.start()
    return Endpoint(Broker(host=process.host, port=process.port), passwords), process.stop


# listener name -> starts a broker with (workdir, ACL file, users) and returns (endpoint, stop)
LISTENERS: dict[str, Callable[[Path, Path, dict[str, str]],
                              tuple[Endpoint, Callable[[], None]]]] = {"plain": _plain}


@pytest.fixture(scope="module", params=sorted(LISTENERS))
def endpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             gateway_config: Callable[..., Path]) -> Iterator[Endpoint]:
    sites = tmp_path_factory.mktemp("acl-sites")
    for site, gateways in SITES.items():
        for gw in gateways:
            gateway_config(sites, site=site, gateway=gw)
    workdir = tmp_path_factory.mktemp(f"acl-broker-{request.param}")
    acl = generated_acl(workdir, sites=sites)
    endpoint, stop = LISTENERS[request.param](workdir, acl,
                                              {u: secrets.token_urlsafe(12) for u in USERS})
    yield endpoint
    stop()


def _connack(broker: Broker) -> Any:
    """The broker's CONNACK reason code for these settings."""
    answers: list[Any] = []
    client = make_client(broker=broker, client_id=f"probe-{uuid.uuid4().hex[:6]}")
    client.reconnect_delay_set(min_delay=30, max_delay=60)  # one attempt is the answer
    client.on_connect = lambda _c, _u, _f, reason, _p: answers.append(reason)
    connect(client, broker)
    try:
        wait_until(lambda: bool(answers), timeout_s=15, what="the CONNACK", interval_s=0.05)
    finally:
        client.disconnect()
        client.loop_stop()
    return answers[0]


class _Reader:
    """A client subscribed to a filter, recording (topic, payload, retained) it is delivered."""

    def __init__(self, broker: Broker, topic_filter: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = make_client(broker=broker, client_id=f"r-{uuid.uuid4().hex[:6]}")
        self.client.on_message = self._message
        self.client.on_connect = lambda c, _u, _f, _r, _p: c.subscribe(topic_filter, qos=1)
        self.client.on_subscribe = lambda *_a: subscribed.set()
        connect(self.client, broker)
        assert subscribed.wait(15), f"{broker.username} could not subscribe"

    def _message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def topics(self) -> list[str]:
        with self._lock:
            return [topic for topic, _p, _r in self.messages]

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

    def publish(self, topic: str, payload: bytes = b"{}", *, retain: bool = False) -> int:
        """The PUBACK's reason code: below 0x80 when accepted (0x10: nobody subscribed)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        wait_until(lambda: info.mid in self.acks, timeout_s=15, what=f"the PUBACK of {topic}",
                   interval_s=0.05)
        return int(self.acks[info.mid].value)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def everything(endpoint: Endpoint) -> Iterator[_Reader]:
    """The collector, which may read every gateway's topics, subscribed to all of them."""
    reader = _Reader(endpoint.settings("collector"), "dynamo/v1/#")
    yield reader
    reader.close()


def test_anonymous_client_is_refused(endpoint: Endpoint) -> None:
    reason = _connack(endpoint.settings(None))
    assert reason.is_failure and reason.value in (0x86, 0x87)  # bad credentials / not authorised


def test_wrong_password_is_refused(endpoint: Endpoint) -> None:
    reason = _connack(endpoint.settings("north-a", "not-the-password"))
    assert reason.is_failure and reason.value in (0x86, 0x87)
    assert not _connack(endpoint.settings("north-a")).is_failure  # the control


def test_a_gateway_publishes_only_under_its_own_site_and_id(endpoint: Endpoint,
                                                            everything: _Reader) -> None:
    tag = uuid.uuid4().hex[:6]  # equipment level: this test's messages only
    north_a = _Publisher(endpoint.settings("north-a"))
    try:
        other_site = north_a.publish(telemetry_topic("south", "north-a", tag))
        other_sites_gateway = north_a.publish(telemetry_topic("south", "south-a", tag))
        same_site_other_gateway = north_a.publish(telemetry_topic("north", "north-b", tag))
        sys_topic = north_a.publish(f"$SYS/broker/{tag}")
        own = north_a.publish(telemetry_topic("north", "north-a", tag))
    finally:
        north_a.close()
    assert (other_site, other_sites_gateway, same_site_other_gateway) == (NOT_AUTHORISED,) * 3
    assert sys_topic >= 0x80
    assert own < 0x80
    # One connection's messages are delivered in order: once the accepted last one is in,
    # any refused one would have been too.
    wait_until(lambda: telemetry_topic("north", "north-a", tag) in everything.topics(),
               timeout_s=15, what="the accepted message at the collector", interval_s=0.05)
    assert [t for t in everything.topics() if t.endswith(tag)] == [
        telemetry_topic("north", "north-a", tag)]


def test_a_gateway_reads_nothing_but_its_own_prefix(endpoint: Endpoint) -> None:
    tag = uuid.uuid4().hex[:6]
    snoop = _Reader(endpoint.settings("north-a"), "dynamo/v1/#")
    snoop_sys = _Reader(endpoint.settings("north-a"), "$SYS/#")
    uptime = _Reader(endpoint.settings("healthcheck"), "$SYS/broker/uptime")
    publishers = {gw: _Publisher(endpoint.settings(gw))
                  for gw in ("north-a", "north-b", "south-a")}
    try:
        assert publishers["south-a"].publish(telemetry_topic("south", "south-a", tag)) < 0x80
        assert publishers["north-b"].publish(telemetry_topic("north", "north-b", tag)) < 0x80
        assert publishers["north-a"].publish(telemetry_topic("north", "north-a", tag)) < 0x80
        wait_until(lambda: telemetry_topic("north", "north-a", tag) in snoop.topics(),
                   timeout_s=15, what="north-a's own message", interval_s=0.05)
        # $SYS is published (healthcheck, which may read the uptime, receives it: the control)
        # but never to a gateway, whatever it subscribes to.
        wait_until(lambda: bool(uptime.topics()), timeout_s=20, what="$SYS/broker/uptime",
                   interval_s=0.1)
        time.sleep(0.5)  # the others' messages, published first, would be here by now
        assert [t for t in snoop.topics() if t.endswith(tag)] == [
            telemetry_topic("north", "north-a", tag)]
        assert snoop_sys.topics() == []
    finally:
        for publisher in publishers.values():
            publisher.close()
        for reader in (snoop, snoop_sys, uptime):
            reader.close()


def test_a_gateway_cannot_overwrite_another_gateways_retained_status(
        endpoint: Endpoint) -> None:
    topic = status_topic("north", "north-b")
    north_b = _Publisher(endpoint.settings("north-b"))
    north_a = _Publisher(endpoint.settings("north-a"))
    online = b'{"v":1,"site":"north","gateway":"north-b","state":"online"}'
    try:
        assert north_b.publish(topic, online, retain=True) < 0x80
        forged = b'{"v":1,"site":"north","gateway":"north-b","state":"offline"}'
        assert north_a.publish(topic, forged, retain=True) == NOT_AUTHORISED
        assert north_a.publish(topic, b"", retain=True) == NOT_AUTHORISED  # nor clear it
    finally:
        north_a.close()
        north_b.close()
    late = _Reader(endpoint.settings("collector"), topic)  # a newcomer gets the retained one
    try:
        wait_until(lambda: bool(late.messages), timeout_s=15, what="the retained status",
                   interval_s=0.05)
        time.sleep(0.2)
        assert late.messages == [(topic, online, True)]
    finally:
        late.close()


def test_the_suite_broker_confines_the_ariege_gateways_to_their_site(
        broker_for: Callable[[str], Broker]) -> None:
    """The session broker runs the ACL generated for the Ariège sites (as committed)."""
    tag = uuid.uuid4().hex[:6]
    dryer = _Publisher(broker_for("dryer-gw"))
    try:
        assert dryer.publish(telemetry_topic("other-site", "dryer-gw", tag)) == NOT_AUTHORISED
        assert dryer.publish(telemetry_topic("ariege", "freezer-gw", tag)) == NOT_AUTHORISED
        assert dryer.publish(telemetry_topic("ariege", "dryer-gw", tag)) < 0x80
    finally:
        dryer.close()
