"""The fast path: an ordinary, valid telemetry payload straight to line protocol.

The collector spends most of its time turning JSON readings into lines. This path parses with
orjson and checks the rules of `telemetry.payload.Telemetry` by hand, building each line as it
goes and caching what repeats from message to message (validated identifiers, the tag part of
each series). It only ever *accepts*: whenever a payload is anything but plainly valid (a
missing field, a number sent as a string, NaN, an unknown key…) it returns None and the caller
falls back to the pydantic model, which decides and words the error. A property-based test
checks that whatever this path accepts, the model accepts too, with the same lines.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from telemetry.influx.lineprotocol import escape_key, field_value
from telemetry.influx.schema import READINGS, REASON_FIELD, VALUE_FIELD

# The patterns and bounds of telemetry.payload; fullmatch, like pydantic's anchored regex.
_IDENT = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_SENSOR = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_TS_MIN, _TS_MAX = 946_684_800_000, 4_102_444_800_000
_MESSAGE_KEYS = frozenset({"v", "site", "gateway", "equipment", "device", "seq", "ts",
                           "clock_synced", "readings"})
_READING_KEYS = frozenset({"sensor", "value", "unit", "quality", "reason"})
_QUALITIES = frozenset({"good", "uncertain", "bad"})
_CACHE_LIMIT = 100_000  # series; beyond, the caches start afresh (memory stays bounded)


# A series' unit, quality, tag part, and tag part followed by the value field's key.
_Series = tuple[str, str, str, str]


class _Refused(Exception):
    """Not plainly valid: the model will judge."""


class FastPath:
    """Valid telemetry payload → lines, or None to let the model judge. Not thread-safe."""

    def __init__(self) -> None:
        self._idents: set[str] = set()
        self._sensors: set[str] = set()
        # (head, site) → sensor → its series; see _lines.
        self._series: dict[tuple[str, str], dict[Any, _Series]] = {}

    def lines(self, payload: bytes, *, site: str, gateway: str,
              equipment: str) -> tuple[list[str], int, int] | None:
        """(lines, seq, ts) when the payload is valid and agrees with its topic, else None."""
        try:
            message = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        if type(message) is not dict or not message.keys() <= _MESSAGE_KEYS:
            return None
        if message.get("v", 1) != 1 or type(message.get("v", 1)) is not int:
            return None
        if "clock_synced" in message and type(message["clock_synced"]) is not bool:
            return None
        seq, ts, device = message.get("seq"), message.get("ts"), message.get("device")
        if type(seq) is not int or seq < 0 or type(ts) is not int \
                or not _TS_MIN <= ts < _TS_MAX:
            return None
        # The topic's parts must be what the payload says, and valid identifiers.
        if message.get("site") != site or message.get("gateway") != gateway \
                or message.get("equipment") != equipment or type(device) is not str:
            return None
        for ident in (site, gateway, equipment, device):
            if ident not in self._idents:
                if not _IDENT.fullmatch(ident):
                    return None
                self._remember(self._idents, ident)
        readings = message.get("readings")
        if type(readings) is not list or not 1 <= len(readings) <= 1000:
            return None
        head = (f"{READINGS},device={escape_key(device)},equipment={escape_key(equipment)}"
                f",gateway={escape_key(gateway)}")
        try:
            return self._lines(readings, head, site, ts), seq, ts
        except (TypeError, _Refused):  # TypeError: an unhashable sensor, unit or quality
            return None

    def _lines(self, readings: list[Any], head: str, site: str, ts: int) -> list[str]:
        end = f" {ts}"
        # The series of this device and site, by sensor: (unit, quality, tags, tags + "value=").
        # Keyed by sensor alone, unit and quality compared: hashing one fresh string per reading
        # instead of a tuple of five is a good part of this loop's cost.
        known = self._series.get((head, site))
        if known is None:
            known = self._series_table(head, site)
        prefixes: list[str] = []  # each line without its value, or whole when it has none
        numbers: list[Any] = []  # each line's value (None: none), formatted all at once below
        add_prefix, add_number = prefixes.append, numbers.append
        # No call per reading: this is the collector's innermost loop.
        for reading in readings:
            if type(reading) is not dict or not reading.keys() <= _READING_KEYS:
                raise _Refused
            sensor = reading.get("sensor")
            unit = reading.get("unit", "")
            quality = reading.get("quality", "good")
            value: Any = reading.get("value")
            entry = known.get(sensor)  # TypeError on an unhashable sensor: refused by the caller
            # A hit means sensor, unit and quality passed before.
            if entry is None or entry[0] != unit or entry[1] != quality:
                entry = self._series_tags(known, head, site, sensor, unit, quality)
            kind = type(value)
            # orjson refuses NaN and numbers beyond a double's range: a float is finite.
            if kind is int:
                if abs(value) > 2**53:  # inexact as a float: the model
                    raise _Refused
            elif kind is not float and (value is not None or quality != "bad"):
                raise _Refused
            reason = reading.get("reason")
            if reason is None:
                if value is None or quality == "bad":
                    raise _Refused
                add_prefix(entry[3])
            else:
                if type(reason) is not str or len(reason) > 200 \
                        or (quality == "bad" and not reason):
                    raise _Refused
                text = f"{REASON_FIELD}={field_value(reason)}" if reason else ""
                if value is None:
                    add_prefix(f"{entry[2]}{text}{end}")
                else:
                    add_prefix(f"{entry[2]}{text},{VALUE_FIELD}=" if text else entry[3])
            add_number(value)
        # field_value's float format is repr's: the shortest digits that read back the same
        # double. orjson writes the same digits (both are shortest round-trip; the differential
        # tests hold them to it) for every value in one C call, several times faster than a
        # repr each. Where repr uses an exponent (below 1e-4, from 1e16) the forms differ
        # (orjson: 0.00001 and 1e-7 for 1e-05 and 1e-07): repr formats those itself. An int
        # (|n| ≤ 2**53 < 1e16) comes out as its digits: repr(float(n)) without ".0".
        tokens = orjson.dumps(numbers).decode()[1:-1].split(",")
        for i, token in enumerate(tokens):
            value = numbers[i]
            if value is None:
                continue  # the prefix is the whole line
            if "e" in token or "0.0000" in token:
                token = repr(float(value))
            # A float keeps its type without ".0" (field_value): the line is shorter.
            if token[-2:] == ".0":
                token = token[:-2]
            prefixes[i] = f"{prefixes[i]}{token}{end}"
        return prefixes

    def _series_table(self, head: str, site: str) -> dict[Any, _Series]:
        if len(self._series) >= _CACHE_LIMIT:
            self._series.clear()
        table: dict[Any, _Series] = {}
        self._series[(head, site)] = table
        return table

    def _series_tags(self, known: dict[Any, _Series], head: str, site: str, sensor: Any,
                     unit: Any, quality: Any) -> _Series:
        """The tag part of a new series, once its sensor, unit and quality are checked."""
        if type(sensor) is not str or type(unit) is not str or len(unit) > 32 \
                or type(quality) is not str or quality not in _QUALITIES:
            raise _Refused
        if sensor not in self._sensors:
            if not _SENSOR.fullmatch(sensor):
                raise _Refused
            self._remember(self._sensors, sensor)
        unit_tag = f",unit={escape_key(unit)}" if unit else ""
        tags = (f"{head},quality={quality},sensor={escape_key(sensor)}"
                f",site={escape_key(site)}{unit_tag} ")
        entry = (unit, quality, tags, f"{tags}{VALUE_FIELD}=")
        if len(known) >= _CACHE_LIMIT:
            known.clear()
        known[sensor] = entry
        return entry

    @staticmethod
    def _remember(cache: set[str], item: str) -> None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache.add(item)
