"""Safe InfluxQL building: every value that comes from a request goes through here.

InfluxQL has no bind parameters that all of 1.x, 2.x-compat and 3 Core accept, so identifiers
and string literals are quoted and escaped by these functions, and nothing else builds them.
"""

from __future__ import annotations

from datetime import UTC, datetime


def quote_ident(name: str) -> str:
    """A double-quoted identifier (measurement, tag or field key)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """A single-quoted string literal (tag values in WHERE clauses)."""
    if "\n" in value or "\r" in value:
        raise ValueError("string literals cannot hold line breaks")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def time_literal(moment: datetime) -> str:
    """An RFC 3339 UTC time literal with nanosecond-compatible precision."""
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return "'" + moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "'"


def tag_equals(tag: str, value: str) -> str:
    return f"{quote_ident(tag)} = {quote_string(value)}"
