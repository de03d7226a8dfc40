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

import math
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


class _Refused(Exception):
    """Not plainly valid: the model will judge."""


class FastPath:
    """Valid telemetry payload → lines, or None to let the model judge. Not thread-safe."""

    def __init__(self) -> None:
        self._idents: set[str] = set()
        self._sensors: set[str] = set()
        self._series: dict[tuple[object, ...], str] = {}

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
        out = []
        series = self._series
        # One loop, no call per reading: this is the collector's innermost loop.
        for reading in readings:
            if type(reading) is not dict or not reading.keys() <= _READING_KEYS:
                raise _Refused
            sensor = reading.get("sensor")
            unit = reading.get("unit", "")
            quality = reading.get("quality", "good")
            reason = reading.get("reason")
            value = reading.get("value")
            key = (head, site, sensor, unit, quality)
            tags = series.get(key)  # a hit means sensor, unit and quality passed before
            if tags is None:
                tags = self._series_tags(head, site, sensor, unit, quality)
                if tags is None:
                    raise _Refused
            number: str | None = None
            if type(value) is float or type(value) is int:
                if type(value) is int and abs(value) > 2**53:  # inexact as a float: the model
                    raise _Refused
                as_float = float(value)
                if not math.isfinite(as_float):
                    raise _Refused
                # field_value's float format, inlined.
                number = repr(as_float)
                if number.endswith(".0"):
                    number = number[:-2]
            elif value is not None or quality != "bad":
                raise _Refused
            if reason is None:
                if quality == "bad" or number is None:
                    raise _Refused
                out.append(f"{tags}{VALUE_FIELD}={number} {ts}")
                continue
            if type(reason) is not str or len(reason) > 200 or (quality == "bad" and not reason):
                raise _Refused
            text = f"{REASON_FIELD}={field_value(reason)}" if reason else ""
            if number is not None:
                text = f"{text},{VALUE_FIELD}={number}" if text else f"{VALUE_FIELD}={number}"
            out.append(f"{tags}{text} {ts}")
        return out

    def _series_tags(self, head: str, site: str, sensor: Any, unit: Any,
                     quality: Any) -> str | None:
        """The tag part of a new series, once its sensor, unit and quality are checked."""
        if type(sensor) is not str or type(unit) is not str or len(unit) > 32 \
                or type(quality) is not str or quality not in _QUALITIES:
            return None
        if sensor not in self._sensors:
            if not _SENSOR.fullmatch(sensor):
                return None
            self._remember(self._sensors, sensor)
        unit_tag = f",unit={escape_key(unit)}" if unit else ""
        tags = (f"{head},quality={quality},sensor={escape_key(sensor)}"
                f",site={escape_key(site)}{unit_tag} ")
        if len(self._series) >= _CACHE_LIMIT:
            self._series.clear()
        self._series[(head, site, sensor, unit, quality)] = tags
        return tags

    @staticmethod
    def _remember(cache: set[str], item: str) -> None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache.add(item)
