"""Telemetry and status messages as InfluxDB points; the schema is telemetry.influx.schema."""

from __future__ import annotations

from telemetry.influx.lineprotocol import line
from telemetry.influx.schema import GATEWAY_STATUS, READINGS, REASON_FIELD, VALUE_FIELD
from telemetry.payload import Status, Telemetry


def telemetry_lines(message: Telemetry) -> list[str]:
    """One line per reading; a bad reading keeps its reason and has no value."""
    base = {"site": message.site, "gateway": message.gateway, "equipment": message.equipment,
            "device": message.device}
    out = []
    for r in message.readings:
        fields: dict[str, float | str] = {}
        if r.value is not None:
            fields[VALUE_FIELD] = float(r.value)
        if r.reason:
            fields[REASON_FIELD] = r.reason
        tags = {**base, "sensor": r.sensor, "unit": r.unit, "quality": r.quality.value}
        out.append(line(READINGS, tags, fields, message.ts))
    return out


def status_line(status: Status, *, received_ms: int) -> str:
    """The gateway's state; the last will has no timestamp of its own, so it takes the receipt's."""
    fields: dict[str, float | int | str] = {"online": 1 if status.state == "online" else 0}
    if status.buffer_depth is not None:
        fields["buffer_depth"] = status.buffer_depth
    if status.version:
        fields["version"] = status.version
    if status.config_hash:
        fields["config_hash"] = status.config_hash
    return line(GATEWAY_STATUS, {"site": status.site, "gateway": status.gateway}, fields,
                status.ts or received_ms)
