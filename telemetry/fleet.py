"""The centre's view of its gateways: push a signed configuration, read the fleet's state
(docs/fleet.md). `dynamo fleet` and the console's fleet page are its two users.

Pushing: the configuration file (under version control, `firmware-config/sites/{site}/`) is
validated as `dynamo config check` does, signed (telemetry/signing.py) and published retained
on the gateway's config topic, so a gateway that is offline gets it at its next connection.
The text goes as written: `${NAME}` references (secrets, per-host addresses) are resolved by the
gateway from its own environment, and never travel.

The fleet's state is what the broker retains: each gateway's last status (birth, periodic, or
last will) and the collector's last end-to-end acknowledgement.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from telemetry.errors import ConfigError, PayloadError
from telemetry.loader import load_gateway_config
from telemetry.mqtt import connect, make_client
from telemetry.payload import Ack, Status, decode_ack, decode_status
from telemetry.signing import Envelope, SigningError, decode, load_private_key, sign
from telemetry.site import Broker, GatewayConfig
from telemetry.topics import (
    Channel,
    ack_subscription,
    fleet_config_topic,
    parse_ack_topic,
    parse_topic,
    subscription,
)


class FleetError(Exception):
    """A push or a status read that could not be done; the message says why."""


@dataclass(frozen=True, slots=True)
class Pushed:
    site: str
    gateway: str
    version: int
    sha256: str
    topic: str


def find_config(gateway: str, sites: Path) -> Path:
    """The configuration file of `gateway` below `sites` (its `gateway:` id, not its name)."""
    from telemetry.acl import find_configs

    found = [f for f in find_configs(sites) if _gateway_id(f) == gateway]
    if not found:
        raise FleetError(f"no configuration of gateway {gateway!r} below {sites}")
    if len(found) > 1:
        raise FleetError(f"gateway {gateway!r} is configured twice: "
                         + ", ".join(str(f) for f in found))
    return found[0]


def _gateway_id(file: Path) -> str | None:
    import yaml

    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return str(data.get("gateway")) if isinstance(data, dict) else None


def push(*, gateway: str, config_file: Path, key_file: Path, broker: Broker,
         site: str | None = None, timeout_s: float = 10.0,
         now_ms: int | None = None) -> Pushed:
    """Validate, sign and publish (retained) `config_file` for `gateway` (of `site`, when
    given); `FleetError` if any step fails. The version is the push's time in ms, above the
    version the topic holds."""
    try:
        config = load_gateway_config(config_file)
    except ConfigError as exc:
        raise FleetError(f"configuration refused:\n{exc}") from None
    if config.gateway != gateway:
        raise FleetError(f"{config_file} configures gateway {config.gateway!r}, not {gateway!r}")
    if site is not None and config.site != site:
        raise FleetError(f"{config_file} configures gateway {gateway!r} of site "
                         f"{config.site!r}, not {site!r}")
    if config.fleet is None:
        raise FleetError(f"{config_file} has no `fleet` section: the gateway would not take "
                         "configurations from the centre after this one")
    try:
        key = load_private_key(key_file)
    except SigningError as exc:
        raise FleetError(str(exc)) from None
    text = config_file.read_text(encoding="utf-8")
    topic = fleet_config_topic(config.site, gateway)
    with _Session(broker, timeout_s) as session:
        held = session.retained(topic)
        version = max(now_ms if now_ms is not None else int(time.time() * 1000),
                      held.version + 1 if held is not None else 0)
        envelope = sign(key, site=config.site, gateway=gateway, version=version, config=text)
        session.publish(topic, envelope.encode())
    return Pushed(site=config.site, gateway=gateway, version=version, sha256=envelope.sha256,
                  topic=topic)


@dataclass(frozen=True, slots=True)
class FleetRow:
    """One gateway as the broker last heard of it."""

    site: str
    gateway: str
    status: Status
    ack_upto: int | None

    @property
    def online(self) -> bool:
        return self.status.state == "online"

    def age_s(self, now_ms: int) -> float | None:
        """Seconds since the gateway's last status (None: a last will, which has no time)."""
        return None if self.status.ts is None else max(0.0, (now_ms - self.status.ts) / 1000)


def rows(statuses: Iterable[Status], acks: dict[tuple[str, str], Ack], *,
         site: str | None = None) -> list[FleetRow]:
    """The table of `fleet status`, sorted by site then gateway."""
    out = [FleetRow(site=s.site, gateway=s.gateway, status=s,
                    ack_upto=acks[(s.site, s.gateway)].upto if (s.site, s.gateway) in acks
                    else None)
           for s in statuses if site is None or s.site == site]
    return sorted(out, key=lambda r: (r.site, r.gateway))


def read_fleet(broker: Broker, *, site: str | None = None, wait_s: float = 2.0) -> list[FleetRow]:
    """Every gateway's retained status (and ack) on the broker."""
    statuses: dict[tuple[str, str], Status] = {}
    acks: dict[tuple[str, str], Ack] = {}
    with _Session(broker, wait_s + 5) as session:
        filters = [subscription(Channel.STATUS, site=site or "+"),
                   ack_subscription(site=site or "+")]
        for topic, payload in session.collect(filters, wait_s=wait_s):
            _take(topic, payload, statuses, acks)
    return rows(statuses.values(), acks, site=site)


def _take(topic: str, payload: bytes, statuses: dict[tuple[str, str], Status],
          acks: dict[tuple[str, str], Ack]) -> None:
    try:
        parsed, ack_of = parse_topic(topic), parse_ack_topic(topic)
        if parsed is not None and parsed.channel is Channel.STATUS:
            status = decode_status(payload)
            if (status.site, status.gateway) == (parsed.site, parsed.gateway):
                statuses[(parsed.site, parsed.gateway)] = status
        elif ack_of is not None:
            ack = decode_ack(payload)
            if (ack.site, ack.gateway) == ack_of:
                acks[ack_of] = ack
    except PayloadError:
        return  # not ours to judge; the collector dead-letters malformed messages


class _Session:
    """A short MQTT connection of the centre's command line: connect, read retained
    messages, publish and wait for the PUBACK."""

    def __init__(self, broker: Broker, timeout_s: float) -> None:
        self.broker = broker
        self.timeout_s = timeout_s
        self.client = make_client(broker=broker, client_id=f"dynamo-fleet-{time.time_ns()}")
        self._connected = threading.Event()
        self._refused: str | None = None
        self._messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subacks = threading.Semaphore(0)
        self._published: dict[int, str | None] = {}
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._subacks.release()
        self.client.on_publish = self._on_publish

    def __enter__(self) -> _Session:
        connect(self.client, self.broker)
        if not self._connected.wait(self.timeout_s):
            self.close()
            raise FleetError(f"broker {self.broker.host}:{self.broker.port}: "
                             f"{self._refused or 'no connection within the timeout'}")
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._refused = f"refused: {reason}"
            return
        self._connected.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        if message.payload:
            with self._lock:
                self._messages.append((message.topic, bytes(message.payload)))

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        with self._lock:
            self._published[mid] = str(reason) if reason.is_failure else None

    def collect(self, filters: list[str], *, wait_s: float) -> list[tuple[str, bytes]]:
        """The retained messages of `filters`: the broker sends them right after the SUBACK;
        `wait_s` bounds how long we listen for them."""
        for topic_filter in filters:
            self.client.subscribe(topic_filter, qos=1)
        for _ in filters:
            if not self._subacks.acquire(timeout=self.timeout_s):
                raise FleetError("the broker did not acknowledge the subscription")
        time.sleep(wait_s)
        with self._lock:
            return list(self._messages)

    def retained(self, topic: str) -> Envelope | None:
        """The envelope the topic holds now, if any and readable."""
        for _, payload in reversed(self.collect([topic], wait_s=0.5)):
            try:
                return decode(payload)
            except SigningError:
                return None
        return None

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=True)
        info.wait_for_publish(timeout=self.timeout_s)
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if info.mid in self._published:
                    refused = self._published[info.mid]
                    break
            time.sleep(0.02)
        else:
            raise FleetError(f"{topic}: no acknowledgement from the broker within "
                             f"{self.timeout_s:g} s")
        if refused is not None:
            raise FleetError(f"{topic}: the broker refused the message ({refused}): its ACL "
                             "lets only the `api` user write configurations (docs/fleet.md)")


def describe_config(config: GatewayConfig) -> str:
    """One line: what a configuration polls."""
    return f"{config.site}/{config.gateway}: {len(config.devices)} device(s), " \
           f"{sum(len(d.sensors) for d in config.devices)} sensor(s)"
