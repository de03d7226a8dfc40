"""The fast path: an ordinary telemetry payload straight to line protocol, a message at a time.

The collector spends most of its time turning JSON readings into lines. The pydantic model
(`telemetry.payload.Telemetry`) judges every message the first time its series appear; this path
then takes the messages made only of series the model already accepted, which is nearly all of
them (a gateway sends the same sensors, units and qualities poll after poll):

- msgspec decodes the payload into typed structs in one C pass (types, bounds, unknown keys);
- each reading's (sensor, unit, quality, reason) is looked up among those the model accepted for
  this device, which gives the line ready-made up to its value: the fast path checks no
  identifier and escapes nothing itself, so it cannot disagree with the model about them;
- the message's numbers are formatted in one orjson call and the lines joined in one string.

Anything else (a series never seen, a reading without value, a number beyond a
double's range, a payload msgspec refuses…) returns None, and the caller asks the model, which
decides, words the error and teaches this path the message's series (`learn`). Property-based
tests hold the two to the same answer and the same lines.

No loop here runs once per reading in Python: `map` over C callables does that work.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import add, attrgetter
from typing import Annotated, Literal, cast

import msgspec
import orjson

from telemetry.influx.lineprotocol import field_value

# The bounds of telemetry.payload (ms since the epoch, 2000-01-01 .. 2100-01-01).
_TS_MIN, _TS_MAX = 946_684_800_000, 4_102_444_800_000
_CACHE_LIMIT = 200_000  # series remembered in all (each a line start of ~130 bytes)

# A series among a device's readings, with the reason and register type its readings carry
# (None mostly): (sensor, unit, quality, reason, type). Each has a line start of its own.
SeriesKey = tuple[str, str, str, str | None, str | None]
# The device a series belongs to: (site, gateway, equipment, device).
DeviceKey = tuple[str, str, str, str]


class _Reading(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    # No pattern or length here: (sensor, unit, quality, reason) must be one the model accepted.
    sensor: str
    value: float | None = None  # an int is taken as the float the model would make of it
    unit: str = ""
    # A literal decodes to the same three strings every time: no new object, compared by identity
    quality: Literal["good", "uncertain", "bad"] = "good"
    reason: str | None = None
    type: str | None = None  # a counter's register type; the model judged it with the series


class _Message(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    site: str
    gateway: str
    equipment: str
    device: str
    seq: Annotated[int, msgspec.Meta(ge=0)]
    ts: Annotated[int, msgspec.Meta(ge=_TS_MIN, lt=_TS_MAX)]
    readings: Annotated[list[_Reading], msgspec.Meta(min_length=1, max_length=1000)]
    v: Literal[1] = 1
    clock_synced: bool = True


_SERIES = attrgetter("sensor", "unit", "quality", "reason", "type")
_VALUE = attrgetter("value")


class FastPath:
    """Payload → lines for series the model accepted before, or None. Not thread-safe."""

    def __init__(self) -> None:
        self._decoder = msgspec.json.Decoder(_Message)
        # device → series → the line's start up to the value: "readings,<tags> [reason=…,]value="
        self._series: dict[DeviceKey, dict[SeriesKey, str]] = {}
        # device → its last message's series, in order, and their starts
        self._last: dict[DeviceKey, tuple[list[SeriesKey], list[str]]] = {}
        self._size = 0  # series remembered, all devices together

    def learn(self, device: DeviceKey, series: Iterable[tuple[SeriesKey, str]]) -> None:
        """Remember series the model accepted, each with its line's start up to the value.

        Only readings with a value belong here (collector.points passes those alone): the fast
        path writes every reading as `<start><value> <ts>`.
        """
        for key, start in series:
            if self._size >= _CACHE_LIMIT:  # memory stays bounded: start afresh
                self._series.clear()
                self._last.clear()
                self._size = 0
            known = self._series.setdefault(device, {})
            if key not in known:
                self._size += 1
            known[key] = start

    def lines(self, payload: bytes, *, site: str, gateway: str,
              equipment: str) -> tuple[str, int, int, int] | None:
        """(lines joined by newlines, how many, seq, ts) when the payload is an ordinary message
        of known series that agrees with its topic; else None (the model judges)."""
        try:
            message = self._decoder.decode(payload)
        except msgspec.DecodeError:  # also msgspec.ValidationError
            return None
        if message.site != site or message.gateway != gateway or message.equipment != equipment:
            return None
        device = (site, gateway, equipment, message.device)
        readings = message.readings
        keys = list(map(_SERIES, readings))
        # A device sends the same series in the same order poll after poll: comparing the list
        # of keys with the last message's costs less than a lookup per reading.
        last = self._last.get(device)
        if last is not None and last[0] == keys:
            starts = last[1]
        else:
            known = self._series.get(device)
            if known is None:
                return None
            found = list(map(known.get, keys))
            if None in found:
                return None
            starts = cast(list[str], found)
            self._last[device] = (keys, starts)
        values = list(map(_VALUE, readings))
        tokens = _numbers(values)
        if tokens is None:
            return None
        end = f" {message.ts}"
        text = f"{end}\n".join(map(add, starts, tokens)) + end
        return text, len(values), message.seq, message.ts


def _numbers(values: list[float | None]) -> list[str] | None:
    """`field_value` of each value, formatted in one C call where that gives the same; None if
    a value is missing (the model writes such a reading).

    field_value writes repr's digits, the shortest that read back the same double; orjson writes
    the same digits (both are shortest round-trip; the differential tests hold them to it).
    Where repr switches to an exponent (below 1e-4, from 1e16) the two forms differ (orjson:
    0.00001 and 1e16 for 1e-05 and 1e+16): such a message is formatted value by value.
    """
    text = orjson.dumps(values).decode()[1:-1]
    if "e" in text or "0.0000" in text or "n" in text:  # "n": null, a missing value
        if None in values:
            return None
        return list(map(field_value, cast(list[float], values)))
    # A float keeps its type without ".0" (field_value): "1.0,2.5" → "1,2.5"; shortest digits
    # never end in zero otherwise, so ".0," only ever ends a token.
    tokens = text.replace(".0,", ",").split(",")
    if tokens[-1].endswith(".0"):
        tokens[-1] = tokens[-1][:-2]
    return tokens
