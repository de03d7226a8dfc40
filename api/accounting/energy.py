"""Energy over a period from a cumulative meter counter: the difference, done carefully.

The counter's value at each end of `[start, end)` is interpolated linearly between the readings
around it, so a figure does not depend on when the gateway happened to poll.

A drop in the counter is either a **roll-over** or a **reset** (docs/indicators.md, "Counter
drops"). An integer register of N bits counts modulo 2^N: a 16-bit pulse counter read 65530
then 4 went 6 pulses to the top and 4 beyond, 10 in all. When the counter's register type is
known (`Wrap`), a drop whose wrapped increment `current − previous + span` is below a quarter
of the register's span is a roll-over, and that wrapped increment is counted. Anything else
is a reset (meter replaced, register cleared): the increment after it is the new value itself,
as if counting restarted from zero. Floats never roll over. Every drop is reported, named.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from api.schemas import CounterDropOut
from api.sites import SensorInfo
from telemetry.datatypes import DataType

# A drop smaller than this fraction of the counter is float32 jitter, not a reset.
_JITTER = 1e-6
# A drop is a roll-over when the counter would have advanced by less than this share of its
# register's span since the previous reading (docs/indicators.md explains the choice).
ROLLOVER_SHARE = 0.25


@dataclass(frozen=True, slots=True)
class Wrap:
    """The range an integer register counts through, in the readings' unit: the values lie in
    `[low, low + span)` and the register goes from its top back to `low`."""

    low: float
    span: float


def wrap_of(data_type: str | None, *, scale: float = 1.0, offset: float = 0.0) -> Wrap | None:
    """The range of a counter read from a register of `data_type`, its raw value converted as
    `raw × scale + offset`; None for floats (they never roll over) and unknown types.

    Signed registers wrap too, in two's complement (32767 + 1 → −32768): the wrapped
    difference is the same modulo 2^N, so the same rule holds (docs/indicators.md)."""
    try:
        ends = DataType(data_type).integer_range if data_type else None
    except ValueError:  # not a register type this project knows
        ends = None
    if ends is None or not scale > 0:
        return None
    low_raw, high_raw = ends
    return Wrap(low=low_raw * scale + offset, span=float(high_raw - low_raw + 1) * scale)


def counter_wrap(sensor: SensorInfo, stored_type: str | None) -> Wrap | None:
    """The range of a counter sensor: the register type its gateway stored with the readings
    first (the device as it was read), else the sensor's `data_type` attribute (a counter the
    template does not describe), else the template's; the scale from the configuration."""
    data_type = stored_type or sensor.attributes.get("data_type") or sensor.data_type
    return wrap_of(data_type, scale=sensor.scale, offset=sensor.offset)


@dataclass(frozen=True, slots=True)
class CounterDrop:
    """A drop of the counter: where it was seen and how it was taken."""

    kind: Literal["rollover", "reset"]
    at_ms: int  # the first value after the drop (the period's end when interpolated there)
    before: float
    after: float
    increment: float  # what was counted for the step: the wrapped increment, or `after`


@dataclass(frozen=True, slots=True)
class CounterDelta:
    delta: float
    readings: int  # readings inside the period
    resets: int
    start_exact: bool  # False when the start had to be taken from one side only
    end_exact: bool
    largest_gap_ms: int  # longest stretch without a reading, including the ends
    rollovers: int = 0
    drops: tuple[CounterDrop, ...] = ()  # every roll-over and reset, in time order


def named_drops(sensor: str, drops: Sequence[CounterDrop]) -> list[CounterDropOut]:
    """The drops of one sensor's counter as the api shows them in its evidence."""
    return [CounterDropOut.model_validate({
        "sensor": sensor, "kind": d.kind, "at": datetime.fromtimestamp(d.at_ms / 1000, UTC),
        "from": d.before, "to": d.after, "increment": d.increment}) for d in drops]


Step = Literal["rise", "jitter", "rollover", "reset"]


def step(previous: float, current: float, wrap: Wrap | None) -> tuple[float, Step]:
    """The increment from one counter value to the next, and what the step was."""
    if current >= previous:
        return current - previous, "rise"
    if previous - current <= _JITTER * abs(previous):
        return 0.0, "jitter"
    if wrap is not None:
        wrapped = current - previous + wrap.span
        if 0 < wrapped < ROLLOVER_SHARE * wrap.span:
            return wrapped, "rollover"
    return current, "reset"


def _at(moment: int, before: tuple[int, float] | None, after: tuple[int, float] | None,
        wrap: Wrap | None) -> tuple[float | None, bool]:
    if before and before[0] == moment:
        return before[1], True
    if after and after[0] == moment:
        return after[1], True
    if before and after and after[0] > before[0]:
        increment, kind = step(before[1], after[1], wrap)
        if kind in ("rise", "rollover"):
            value = before[1] + (moment - before[0]) / (after[0] - before[0]) * increment
            if wrap is not None and kind == "rollover" and value >= wrap.low + wrap.span:
                value -= wrap.span  # the register wrapped before `moment`
            return value, True
    nearest = before or after  # a reset between the two: keep the side that precedes it
    return (nearest[1], False) if nearest else (None, False)


def counter_delta(
    samples: Sequence[tuple[int, float]], *, start_ms: int, end_ms: int,
    wrap: Wrap | None = None,
) -> CounterDelta | None:
    """Increase of a counter over `[start_ms, end_ms)` from time-sorted (ms, value) samples.

    `samples` may extend past both ends (they should, for interpolation). `wrap` is the
    counter's register range when it is an integer register (`wrap_of`); None for a float or
    an unknown type, where every drop is a reset. A roll-over between the last reading before
    a boundary and the first after it is attributed to the side of the boundary where the
    interpolated counter crossed its top. Returns None when no sample is near enough to say
    anything.
    """
    before = [s for s in samples if s[0] <= start_ms]
    inside = [s for s in samples if start_ms < s[0] < end_ms]
    after = [s for s in samples if s[0] >= end_ms]
    first_after_start = inside[0] if inside else (after[0] if after else None)
    last_before_end = inside[-1] if inside else (before[-1] if before else None)
    start_value, start_exact = _at(start_ms, before[-1] if before else None, first_after_start,
                                   wrap)
    end_value, end_exact = _at(end_ms, last_before_end, after[0] if after else None, wrap)
    if start_value is None or end_value is None:
        return None
    chain = [(start_ms, start_value), *inside, (end_ms, end_value)]
    delta = 0.0
    drops: list[CounterDrop] = []
    previous = chain[0][1]
    for moment, current in chain[1:]:
        increment, kind = step(previous, current, wrap)
        if kind == "jitter":
            continue  # keep measuring from the higher value
        if kind != "rise":
            drops.append(CounterDrop(kind=kind, at_ms=moment, before=previous, after=current,
                                     increment=increment))
        delta += increment
        previous = current
    times = [start_ms, *(t for t, _ in inside), end_ms]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return CounterDelta(delta=delta, readings=len(inside),
                        resets=sum(1 for d in drops if d.kind == "reset"),
                        start_exact=start_exact, end_exact=end_exact,
                        largest_gap_ms=max(gaps) if gaps else 0,
                        rollovers=sum(1 for d in drops if d.kind == "rollover"),
                        drops=tuple(drops))


@dataclass(frozen=True, slots=True)
class PowerIntegral:
    energy: float  # in the samples' unit × hours (W·h for W)
    readings: int
    covered_ms: int  # time between readings no further apart than the allowed gap
    largest_gap_ms: int


def _clip_segment(t0: int, v0: float, t1: int, v1: float, sign: int) -> float:
    """∫ max(sign·v, 0) dt over a linear segment, in value·ms, splitting at a zero crossing."""
    a, b = sign * v0, sign * v1
    if a >= 0 and b >= 0:
        return (a + b) / 2 * (t1 - t0)
    if a <= 0 and b <= 0:
        return 0.0
    crossing = t0 + (t1 - t0) * a / (a - b)
    return (a / 2 * (crossing - t0)) if a > 0 else (b / 2 * (t1 - crossing))


def power_integral(
    samples: Sequence[tuple[int, float]], *, start_ms: int, end_ms: int, max_gap_ms: int,
    sign: int = 0,
) -> PowerIntegral | None:
    """Trapezoidal ∫ power dt over `[start_ms, end_ms)` from time-sorted (ms, value) samples.

    Segments longer than `max_gap_ms` are not integrated (the power during a hole is unknown)
    and count as uncovered. `sign` +1 keeps the positive part only (import of a net grid
    power), -1 the negative part as a positive figure (export), 0 the signed value. Done in
    Python over raw points because InfluxQL's INTEGRAL is not served by every InfluxDB.
    """
    inside = [s for s in samples if start_ms < s[0] < end_ms]
    before = [s for s in samples if s[0] <= start_ms]
    after = [s for s in samples if s[0] >= end_ms]
    chain: list[tuple[int, float]] = []

    def interpolated(moment: int, a: tuple[int, float], b: tuple[int, float]) -> float:
        if b[0] == a[0]:
            return a[1]
        return a[1] + (moment - a[0]) / (b[0] - a[0]) * (b[1] - a[1])

    first = inside[0] if inside else (after[0] if after else None)
    if before and first and first[0] - before[-1][0] <= max_gap_ms:
        chain.append((start_ms, interpolated(start_ms, before[-1], first)))
    chain.extend(inside)
    last = inside[-1] if inside else (before[-1] if before else None)
    if after and last and after[0][0] - last[0] <= max_gap_ms:
        chain.append((end_ms, interpolated(end_ms, last, after[0])))
    if not chain:
        return None
    total = 0.0
    covered = 0
    for (t0, v0), (t1, v1) in itertools.pairwise(chain):
        if t1 - t0 > max_gap_ms:
            continue
        covered += t1 - t0
        total += (v0 + v1) / 2 * (t1 - t0) if sign == 0 else _clip_segment(t0, v0, t1, v1, sign)
    times = [start_ms, *(t for t, _ in chain if start_ms < t < end_ms), end_ms]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return PowerIntegral(energy=total / 3_600_000, readings=len(inside), covered_ms=covered,
                         largest_gap_ms=max(gaps) if gaps else 0)


def coverage_ms(times: Sequence[int], *, start_ms: int, end_ms: int, max_gap_ms: int) -> int:
    """Time of `[start_ms, end_ms)` between readings no further apart than `max_gap_ms`.

    The ends count as covered up to the first/last reading when it is within the gap.
    """
    points = sorted(t for t in times if start_ms <= t <= end_ms)
    if not points:
        return 0
    chain = [start_ms, *points, end_ms]
    return sum(b - a for a, b in itertools.pairwise(chain) if b - a <= max_gap_ms)
