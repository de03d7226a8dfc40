"""Messages as InfluxDB points; the schema is telemetry.influx.schema.

`decode` is the one place a received MQTT message becomes line protocol: the live collector
and the dead-letter replay both go through it, so a replayed message is judged by the same rules.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from collector.admission import Admission
from collector.fastpath import FastPath, SeriesKey
from telemetry.errors import PayloadError
from telemetry.influx.lineprotocol import escape_key, field_value, line
from telemetry.influx.schema import (
    GATEWAY_STATUS,
    READINGS,
    REASON_FIELD,
    SEQUENCE_EVENTS,
    TYPE_FIELD,
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
    floor: int | None = None  # status only: the lowest seq the gateway's spool still holds
    # status only: [first, last], numbers a power cut left unaccounted for (collector.sequence)
    void: tuple[int, int] | None = None
    converted: int = 0  # readings converted to their sensor's configured unit (admission)


def decode(topic_name: str, payload: bytes, *, received_ms: int,
           fast: FastPath | None = None, admission: Admission | None = None,
           now_ms: int | None = None) -> Decoded:
    """Validate a message against its topic and turn it into lines; `PayloadError` says why not.

    With `fast`, telemetry of series the model accepted before skips the model (see
    collector.fastpath); what the model accepts teaches `fast` its series.
    With `admission`, the site configurations must declare the message (`Refused` otherwise,
    collector.admission), its time no further ahead of `now_ms` (default `received_ms`; a
    replay judges by today's clock) than the bound.
    """
    now = received_ms if now_ms is None else now_ms
    topic = parse_topic(topic_name)
    if topic is None:
        raise PayloadError("not a dynamo/v1 telemetry or status topic")
    if topic.channel is Channel.STATUS:
        status = decode_status(payload)
        if (status.site, status.gateway) != (topic.site, topic.gateway):
            raise PayloadError("site/gateway in payload differ from the topic")
        if admission is not None:
            admission.check_status(status, now_ms=now)
        return Decoded([status_line(status, received_ms=received_ms)], 1, status.site,
                       status.gateway, ts=status.ts, floor=status.buffer_floor,
                       void=status.buffer_void)
    if topic.channel is not Channel.TELEMETRY:
        raise PayloadError(f"the collector does not store the {topic.channel} channel")
    if fast is not None and topic.equipment is not None:
        accepted = fast.lines(payload, site=topic.site, gateway=topic.gateway,
                              equipment=topic.equipment)
        if accepted is not None:
            text, points, seq, ts = accepted
            if admission is not None:  # fast series come from admitted messages only
                admission.check_time(ts, now_ms=now)
            return Decoded([text], points, topic.site, topic.gateway, seq=seq, ts=ts)
    telemetry = decode_telemetry(payload)
    # The topic is what the broker's ACL vouches for; the payload must agree with it.
    if (telemetry.site, telemetry.gateway, telemetry.equipment) != (
            topic.site, topic.gateway, topic.equipment):
        raise PayloadError("site/gateway/equipment in payload differ from the topic")
    converted = 0
    if admission is not None:
        # Converted readings carry their sensor's unit from here on: the series the fast path
        # learns below are those of a message in the configured units, right as they are.
        telemetry, converted = admission.admit(telemetry, now_ms=now)
    lines = telemetry_lines(telemetry)
    if fast is not None:
        fast.learn((telemetry.site, telemetry.gateway, telemetry.equipment, telemetry.device),
                   _plain_series(telemetry))
    return Decoded(lines, len(lines), telemetry.site, telemetry.gateway, seq=telemetry.seq,
                   ts=telemetry.ts, converted=converted)


def telemetry_seq(topic_name: str, payload: bytes) -> tuple[str, str, int] | None:
    """(site, gateway, seq) of a telemetry message refused by `decode`, when its topic is a
    telemetry topic and its payload still names a number (for the end-to-end ack of a message
    set aside: collector.acks); None otherwise."""
    topic = parse_topic(topic_name)
    if topic is None or topic.channel is not Channel.TELEMETRY:
        return None
    try:
        document = json.loads(payload)
    except ValueError:
        return None
    seq = document.get("seq") if isinstance(document, dict) else None
    if type(seq) is not int or seq < 0:
        return None
    return topic.site, topic.gateway, seq


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
            key = (r.sensor, r.unit, r.quality.value, r.reason, r.type)
            yield key, _value_start(head, site, r)


def _value_start(head: str, site: str, reading: Reading) -> str:
    """A reading's line up to its value: the same for the model's lines and the fast path's.

    A counter's register type is a field (`dtype`), not a tag: it is the same for every
    reading of a sensor, and as a tag its first appearance would have split the series."""
    kind = f"{TYPE_FIELD}={field_value(reading.type)}," if reading.type else ""
    reason = f"{REASON_FIELD}={field_value(reading.reason)}," if reading.reason else ""
    return f"{_series_tags(head, site, reading)} {kind}{reason}{VALUE_FIELD}="


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
    if status.buffer_refused is not None or status.buffer_floor is not None:
        # Messages held because the broker refused them (0 once delivered): the fleet's alarm
        # for an ACL that forbids what a gateway sends.
        fields["buffer_refused"] = sum((status.buffer_refused or {}).values())
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
    """A sequence event (collector.sequence): `count` numbers for a gap, a loss or a void,
    else 1."""
    return line(SEQUENCE_EVENTS, {"site": site, "gateway": gateway, "kind": kind},
                {"seq": seq, "count": count}, time_ms)
