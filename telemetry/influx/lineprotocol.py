"""InfluxDB line protocol encoding: the escaping rules, and one line per point.

Written here rather than taken from influxdb-client's `Point` because the collector encodes
hundreds of thousands of points per second; tests check this encoder against the client's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n"})
_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n"})


def escape_measurement(name: str) -> str:
    return name.translate(_MEASUREMENT)


def escape_key(key: str) -> str:
    """Escape a tag key, tag value or field key."""
    return key.translate(_KEY)


def field_value(value: float | int | bool | str) -> str:
    """Format a field value; floats stay floats so a field never changes type between points."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("line protocol cannot carry NaN or infinity")
        text = repr(value)
        # A float keeps its type without ".0" (no `i` suffix), and the line is shorter.
        return text[:-2] if text.endswith(".0") else text
    # Only quote and backslash are escaped: influxd keeps a raw newline inside a quoted string.
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, float | int | bool | str],
    timestamp: int,
) -> str:
    """One point. Tags and fields are sorted (InfluxDB's preferred order); empty tags dropped."""
    if not fields:
        raise ValueError("a point needs at least one field")
    tag_part = "".join(
        f",{escape_key(k)}={escape_key(v)}" for k, v in sorted(tags.items()) if v != ""
    )
    field_part = ",".join(
        f"{escape_key(k)}={field_value(v)}" for k, v in sorted(fields.items()))
    return f"{escape_measurement(measurement)}{tag_part} {field_part} {timestamp}"
