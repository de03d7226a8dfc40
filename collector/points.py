"""Messages as InfluxDB points; the schema is telemetry.influx.schema.

`decode` is the one place a received MQTT message becomes line protocol: the live collector
and the dead-letter replay both go through it, so a replayed message is judged by the same rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from collector.fastpath import FastPath, SeriesKey
from telemetry.errors import PayloadError
from telemetry.influx.lineprotocol import escape_key, field_value, line
from telemetry.influx.schema import (
    GATEWAY_STATUS,
    READINGS,
    REASON_FIELD,
    SEQUENCE_EVENTS,
    VALUE_FIELD,
)
from telemetry.payload import (
    Reading,
    Status,
    Telemetry,
    decode_status,
    decode_telemetry,
)
from telemetry.topics import Channel, parse_topic


@dataclass(frozen=True, slots=True)
class Decoded:
    """What one message contributes: its lines and, for telemetry, where it sits in sequence.

    `lines` holds line protocol, one or more lines per item (the fast path gives a message's
    lines as one newline-joined string); `points` counts the lines.
    """

    lines: list[str]
    points: int
    site: str
    gateway: str
    seq: int | None = None  # telemetry only
    ts: int | None = None  # the gateway's timestamp (ms), when the message has one


def decode(topic_name: str, payload: bytes, *, received_ms: int,
           fast: FastPath | None = None) -> Decoded:
    """Validate a message against its topic and turn it into lines; `PayloadError` says why not.

    With `fast`, telemetry of series the model accepted before skips the model (see
    collector.fastpath); what the model accepts teaches `fast` its series.
    """
    topic = parse_topic(topic_name)
    if topic is None:
        raise PayloadError("not a dynamo/v1 telemetry or status topic")
    if topic.channel is Channel.STATUS:
        status = decode_status(payload)
        if (status.site, status.gateway) != (topic.site, topic.gateway):
            raise PayloadError("site/gateway in payload differ from the topic")
        return Decoded([status_line(status, received_ms=received_ms)], 1, status.site,
                       status.gateway, ts=status.ts)
    if topic.channel is not Channel.TELEMETRY:
        raise PayloadError(f"the collector does not store the {topic.channel} channel")
    if fast is not None and topic.equipment is not None:
        accepted = fast.lines(payload, site=topic.site, gateway=topic.gateway,
                              equipment=topic.equipment)
        if accepted is not None:
            text, points, seq, ts = accepted
            return Decoded([text], points, topic.site, topic.gateway, seq=seq, ts=ts)
    telemetry = decode_telemetry(payload)
    # The topic is what the broker's ACL vouches for; the payload must agree with it.
    if (telemetry.site, telemetry.gateway, telemetry.equipment) != (
            topic.site, topic.gateway, topic.equipment):
        raise PayloadError("site/gateway/equipment in payload differ from the topic")
    lines = telemetry_lines(telemetry)
    if fast is not None:
        fast.learn((telemetry.site, telemetry.gateway, telemetry.equipment, telemetry.device),
                   _plain_series(telemetry))
    return Decoded(lines, len(lines), telemetry.site, telemetry.gateway, seq=telemetry.seq,
                   ts=telemetry.ts)


def telemetry_lines(message: Telemetry) -> list[str]:
    """One line per reading; a bad reading keeps its reason and has no value.

    Equivalent to `lineprotocol.line` with sorted tags and fields, but the tags shared by the
    whole message are escaped once.
    """
    head, site, ts = _message_tags(message), escape_key(message.site), message.ts
    out = []
    for r in message.readings:
        if r.value is None:  # the model gives a reading without value a reason
            out.append(f"{_series_tags(head, site, r)} {REASON_FIELD}={field_value(r.reason or '')}"
                       f" {ts}")
        else:
            out.append(f"{_value_start(head, site, r)}{field_value(float(r.value))} {ts}")
    return out


def _plain_series(message: Telemetry) -> Iterator[tuple[SeriesKey, str]]:
    """The series of the message's readings that have a value, each with its line up to it."""
    head, site = _message_tags(message), escape_key(message.site)
    for r in message.readings:
        if r.value is not None:
            yield (r.sensor, r.unit, r.quality.value, r.reason), _value_start(head, site, r)


def _value_start(head: str, site: str, reading: Reading) -> str:
    """A reading's line up to its value: the same for the model's lines and the fast path's."""
    reason = f"{REASON_FIELD}={field_value(reading.reason)}," if reading.reason else ""
    return f"{_series_tags(head, site, reading)} {reason}{VALUE_FIELD}="


def _message_tags(message: Telemetry) -> str:
    # Tag keys in sorted order: device, equipment, gateway, quality, sensor, site, unit.
    return (f"{READINGS},device={escape_key(message.device)}"
            f",equipment={escape_key(message.equipment)},gateway={escape_key(message.gateway)}")


def _series_tags(head: str, site: str, reading: Reading) -> str:
    unit = f",unit={escape_key(reading.unit)}" if reading.unit else ""
    return (f"{head},quality={reading.quality.value},sensor={escape_key(reading.sensor)}"
            f",site={site}{unit}")


def status_line(status: Status, *, received_ms: int) -> str:
    """The gateway's state; the last will has no timestamp of its own, so it takes the receipt's."""
    fields: dict[str, float | int | str] = {"online": 1 if status.state == "online" else 0}
    if status.buffer_depth is not None:
        fields["buffer_depth"] = status.buffer_depth
    if status.buffer_thinned is not None:
        fields["buffer_thinned"] = status.buffer_thinned
    if status.buffer_dropped is not None:
        fields["buffer_dropped"] = status.buffer_dropped
    if status.version:
        fields["version"] = status.version
    if status.config_hash:
        fields["config_hash"] = status.config_hash
    if status.clock_synced is not None:
        fields["clock_synced"] = 1 if status.clock_synced else 0
    if status.devices:
        fields["devices"] = len(status.devices)
        fields["devices_ok"] = sum(1 for health in status.devices.values() if health == "ok")
    return line(GATEWAY_STATUS, {"site": status.site, "gateway": status.gateway}, fields,
                status.ts or received_ms)


def sequence_event_line(*, site: str, gateway: str, kind: str, seq: int, count: int,
                        time_ms: int) -> str:
    """A sequence event (collector.sequence): `count` numbers for a gap or a loss, else 1."""
    return line(SEQUENCE_EVENTS, {"site": site, "gateway": gateway, "kind": kind},
                {"seq": seq, "count": count}, time_ms)
