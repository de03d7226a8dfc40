"""TLS test fixtures: a site PKI made by `telemetry.pki` and a Mosquitto of this folder's own
with a TLS listener that requires a client certificate (CN = user name), beside its plain one.

The broker is this folder's (not the session's): the tests revoke certificates, reload and
restart it.
"""

from __future__ import annotations

import secrets
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

# --import-mode=importlib puts no test folder on sys.path; the gateway tests' helpers are shared.
sys.path.insert(0, str(Path(__file__).parents[1] / "gateway"))

from dynamo.devservices import BrokerTls, MosquittoProcess, generated_acl, wait_until
from telemetry.mqtt import connect, make_client
from telemetry.pki import Pki
from telemetry.site import Broker, TlsFiles

REPO = Path(__file__).resolve().parents[2]
# Broker users with a certificate: the services, two Ariège gateways (the generated ACL gives
# each exactly its own prefix under site `ariege`) and the suite's synthetic gateway.
CLIENTS = ("collector", "api", "alerting", "dryer-gw", "freezer-gw", "test-gw")


@dataclass
class TlsSite:
    pki: Pki
    broker: MosquittoProcess
    passwords: dict[str, str] = field(default_factory=dict)

    def tls_broker(self, user: str, *, cert: Path | None = None, key: Path | None = None,
                   ca: Path | None = None) -> Broker:
        """Settings of `user` on the TLS listener (its current certificate unless given)."""
        return Broker(host=self.broker.host, port=self.broker.tls_port or 0, keepalive_s=5,
                      tls=TlsFiles(ca=str(ca or self.pki.ca_cert),
                                   cert=str(cert or self.pki.client_cert(user)),
                                   key=str(key or self.pki.client_key(user))))


@pytest.fixture(scope="module")
def tls_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsSite]:
    workdir = tmp_path_factory.mktemp("tls")
    pki = Pki(workdir / "pki")
    pki.init()
    pki.issue_server(hosts=("localhost", "127.0.0.1"))
    for name in CLIENTS:
        pki.issue_client(name)
    passwords = {"collector": secrets.token_urlsafe(12)}
    acl = generated_acl(workdir / "broker", sites=REPO / "firmware-config" / "sites",
                        development_gateways=("test-gw",))
    broker = MosquittoProcess(
        workdir=workdir / "broker", users=passwords, acl_file=acl,
        tls=BrokerTls(cafile=pki.ca_cert, certfile=pki.server_cert, keyfile=pki.server_key,
                      crlfile=pki.crl))
    broker.start()
    yield TlsSite(pki=pki, broker=broker, passwords=passwords)
    broker.stop()


class Attempt:
    """One connection attempt: the CONNACK's reason, or how the TLS handshake ended."""

    def __init__(self, broker: Broker, *, username: str | None = None,
                 password: str | None = None) -> None:
        self.events: list[str] = []
        self.messages: list[str] = []
        self.acks: dict[int, Any] = {}
        self._lock = threading.Lock()
        self.client = make_client(broker=broker, client_id=f"t-{uuid.uuid4().hex[:8]}")
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._connected
        self.client.on_connect_fail = lambda _c, _u: self._event("connect-failed")
        self.client.on_disconnect = lambda _c, _u, _f, reason, _p: self._event(f"lost {reason}")
        self.client.on_message = self._message
        self.client.on_publish = self._published
        connect(self.client, broker)

    def _event(self, what: str) -> None:
        with self._lock:
            self.events.append(what)

    def _connected(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._event("refused" if reason.is_failure else "accepted")

    def _message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(message.topic)

    def _published(self, _c: mqtt.Client, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        with self._lock:
            self.acks[mid] = reason

    def outcome(self) -> str:
        """`accepted`, or the first failure (handshake refused, connection closed, CONNACK)."""
        wait_until(lambda: bool(self.events), timeout_s=15, what="the connection's outcome",
                   interval_s=0.02)
        with self._lock:
            return self.events[0]

    def publish(self, topic: str, *, retain: bool = False) -> Any:
        """Publish at QoS 1; the PUBACK's reason code (MQTT 5 says when it is refused)."""
        info = self.client.publish(topic, b"{}", qos=1, retain=retain)
        wait_until(lambda: info.mid in self.acks, timeout_s=15, what=f"PUBACK of {topic}",
                   interval_s=0.02)
        return self.acks[info.mid]

    def subscribe(self, topic_filter: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_a: done.set()
        self.client.subscribe(topic_filter, qos=1)
        assert done.wait(15)

    def seen(self) -> list[str]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def attempt() -> Iterator[Any]:
    """Make `Attempt`s; all are closed at the end of the test."""
    made: list[Attempt] = []

    def make(broker: Broker, **kwargs: Any) -> Attempt:
        made.append(Attempt(broker, **kwargs))
        return made[-1]

    yield make
    for one in made:
        one.close()
