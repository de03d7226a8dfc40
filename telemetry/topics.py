"""The MQTT topic layout, version 1. docs/mqtt.md documents it; this module is its one owner.

    dynamo/v1/{site}/{gateway}/status                  retained birth / last-will, JSON
    dynamo/v1/{site}/{gateway}/telemetry/{equipment}   one message per device poll, JSON
    dynamo/v1/{site}/{gateway}/events/{equipment}      alerts and notable events, JSON
    dynamo/v1/{site}/{gateway}/uplink                  LOCAL broker only: retained uplink state
    dynamo/v1/{site}/ack/{gateway}                     retained end-to-end ack, by the collector
    dynamo/v1/{site}/fleet/config/{gateway}            retained signed configuration, by the centre
    dynamo/v1/{site}/fleet/bundle[/{gateway}]          retained signed upgrade notice, by the centre

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


ACK_PSEUDO_GATEWAY = "ack"


def ack_topic(site: str, gateway: str) -> str:
    """The collector's end-to-end acknowledgement of one gateway's messages, retained.

    Below the reserved pseudo-gateway `ack`, not below the gateway's own prefix: the ACL's
    gateway pattern (`dynamo/v1/+/%u/#`) then gives no gateway the right to write it, so no
    gateway can forge an acknowledgement (its own or another's); the collector alone writes it
    and each gateway reads its own. Not a `Channel`: `parse_topic` ignores it.
    """
    return f"{ROOT}/{site}/{ACK_PSEUDO_GATEWAY}/{gateway}"


def ack_subscription(*, site: str = "+") -> str:
    """Filter for the acknowledgements of every gateway (of one site): the collector reads
    its own retained ones back at start."""
    return f"{ROOT}/{site}/{ACK_PSEUDO_GATEWAY}/+"


def parse_ack_topic(topic: str) -> tuple[str, str] | None:
    """(site, gateway) of an acknowledgement topic, or None."""
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != ROOT or parts[3] != ACK_PSEUDO_GATEWAY:
        return None
    return parts[2], parts[4]


FLEET_PSEUDO_GATEWAY = "fleet"


def fleet_config_topic(site: str, gateway: str) -> str:
    """The signed configuration the centre pushes to one gateway, retained (docs/fleet.md).

    Below the reserved pseudo-gateway `fleet`, as the ack: no gateway may write it (the ACL's
    gateway prefix does not cover it), only the `api` service user; each gateway reads its own.
    Not a `Channel`: `parse_topic` ignores it.
    """
    return f"{ROOT}/{site}/{FLEET_PSEUDO_GATEWAY}/config/{gateway}"


def fleet_bundle_topic(site: str, gateway: str | None = None) -> str:
    """The signed upgrade notice the centre publishes, retained (docs/fleet.md): for one
    gateway, or (`gateway` None) for every gateway of the site. Below the pseudo-gateway
    `fleet` like configurations: only the `api` user writes it, each gateway reads its own and
    its site's. Not a `Channel`: `parse_topic` ignores it.
    """
    base = f"{ROOT}/{site}/{FLEET_PSEUDO_GATEWAY}/bundle"
    return base if gateway is None else f"{base}/{gateway}"


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
