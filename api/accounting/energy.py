"""Energy over a period from a cumulative meter counter: the difference, done carefully.

The counter's value at each end of `[start, end)` is interpolated linearly between the readings
around it, so a figure does not depend on when the gateway happened to poll. A drop in the
counter is a reset (meter replaced, register cleared) or a roll-over: the increment after a drop
is the new value itself, as if counting restarted from zero, and the drop is reported.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

# A drop smaller than this fraction of the counter is float32 jitter, not a reset.
_JITTER = 1e-6


@dataclass(frozen=True, slots=True)
class CounterDelta:
    delta: float
    readings: int  # readings inside the period
    resets: int
    start_exact: bool  # False when the start had to be taken from one side only
    end_exact: bool
    largest_gap_ms: int  # longest stretch without a reading, including the ends


def _at(moment: int, before: tuple[int, float] | None, after: tuple[int, float] | None
        ) -> tuple[float | None, bool]:
    if before and after and after[1] >= before[1] and after[0] > before[0]:
        share = (moment - before[0]) / (after[0] - before[0])
        return before[1] + share * (after[1] - before[1]), True
    if before and before[0] == moment:
        return before[1], True
    if after and after[0] == moment:
        return after[1], True
    nearest = before or after  # a drop between the two: keep the side that precedes it
    return (nearest[1], False) if nearest else (None, False)


def counter_delta(
    samples: Sequence[tuple[int, float]], *, start_ms: int, end_ms: int
) -> CounterDelta | None:
    """Increase of a counter over `[start_ms, end_ms)` from time-sorted (ms, value) samples.

    `samples` may extend past both ends (they should, for interpolation). Returns None when no
    sample is near enough to say anything.
    """
    before = [s for s in samples if s[0] <= start_ms]
    inside = [s for s in samples if start_ms < s[0] < end_ms]
    after = [s for s in samples if s[0] >= end_ms]
    first_after_start = inside[0] if inside else (after[0] if after else None)
    last_before_end = inside[-1] if inside else (before[-1] if before else None)
    start_value, start_exact = _at(start_ms, before[-1] if before else None, first_after_start)
    end_value, end_exact = _at(end_ms, last_before_end, after[0] if after else None)
    if start_value is None or end_value is None:
        return None
    chain = [(start_ms, start_value), *inside, (end_ms, end_value)]
    delta = 0.0
    resets = 0
    previous = chain[0][1]
    for _, current in chain[1:]:
        if current >= previous:
            delta += current - previous
        elif previous - current <= _JITTER * abs(previous):
            continue  # jitter: keep measuring from the higher value
        else:
            resets += 1
            delta += current
        previous = current
    times = [start_ms, *(t for t, _ in inside), end_ms]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return CounterDelta(delta=delta, readings=len(inside), resets=resets,
                        start_exact=start_exact, end_exact=end_exact,
                        largest_gap_ms=max(gaps) if gaps else 0)


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
