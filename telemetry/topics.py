"""The MQTT topic layout, version 1. docs/mqtt.md documents it; this module is its one owner.

    dynamo/v1/{site}/{gateway}/status                  retained birth / last-will, JSON
    dynamo/v1/{site}/{gateway}/telemetry/{equipment}   one message per device poll, JSON
    dynamo/v1/{site}/{gateway}/events/{equipment}      alerts and notable events, JSON
    dynamo/v1/{site}/{gateway}/uplink                  LOCAL broker only: retained uplink state

Each level is an identifier ([a-z0-9_-]); the gateway level is what the broker's ACL matches
against the gateway's user name, so a gateway can only write below its own prefix.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum

ROOT = "dynamo/v1"


class Channel(StrEnum):
    STATUS = "status"
    TELEMETRY = "telemetry"
    EVENTS = "events"


@dataclass(frozen=True, slots=True)
class Topic:
    site: str
    gateway: str
    channel: Channel
    equipment: str | None = None

    def __str__(self) -> str:
        base = f"{ROOT}/{self.site}/{self.gateway}/{self.channel}"
        return base if self.equipment is None else f"{base}/{self.equipment}"


def status_topic(site: str, gateway: str) -> str:
    return str(Topic(site, gateway, Channel.STATUS))


def telemetry_topic(site: str, gateway: str, equipment: str) -> str:
    return str(Topic(site, gateway, Channel.TELEMETRY, equipment))


def events_topic(site: str, gateway: str, equipment: str) -> str:
    return str(Topic(site, gateway, Channel.EVENTS, equipment))


def uplink_topic(site: str, gateway: str) -> str:
    """The gateway's uplink state, retained, on its *local* broker only (edge alerting reads it).

    Not a `Channel`: it never reaches the central broker, and `parse_topic` ignores it.
    """
    return f"{ROOT}/{site}/{gateway}/uplink"


def alert_commands_topic(site: str) -> str:
    """Operators' commands to the central alerting service (acknowledge, silence), published by
    the api for its console; the alerting service applies them as it applies an SMS reply.

    Not a `Channel`: no gateway writes there (the broker's ACL lets only the api), and
    `parse_topic` ignores it.
    """
    return f"{ROOT}/{site}/alerting/commands"


def subscription(channel: Channel, *, site: str = "+", share_group: str | None = None) -> str:
    """Filter for one channel of every gateway (of one site); `$share/...` when grouped."""
    tail = "" if channel is Channel.STATUS else "/+"
    topic_filter = f"{ROOT}/{site}/+/{channel}{tail}"
    return f"$share/{share_group}/{topic_filter}" if share_group else topic_filter


def parse_topic(topic: str) -> Topic | None:
    """The parts of a v1 topic, or None when the topic is not one of ours."""
    # A collector sees the same few topics again and again; a long one is not worth keeping.
    return _parse_cached(topic) if len(topic) <= 256 else _parse(topic)


@functools.lru_cache(maxsize=4096)
def _parse_cached(topic: str) -> Topic | None:
    return _parse(topic)


def _parse(topic: str) -> Topic | None:
    parts = topic.split("/")
    if len(parts) < 5 or f"{parts[0]}/{parts[1]}" != ROOT:
        return None
    try:
        channel = Channel(parts[4])
    except ValueError:
        return None
    if channel is Channel.STATUS and len(parts) == 5:
        return Topic(parts[2], parts[3], channel)
    if channel is not Channel.STATUS and len(parts) == 6 and parts[5]:
        return Topic(parts[2], parts[3], channel, parts[5])
    return None
