"""Time-weighted facts about gauges and states: how long a series stayed in a range, when it
first crossed a threshold. A reading holds until the next one, for no longer than a gap limit:
beyond it, the time is unknown, not assumed.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimeShare:
    matching_ms: int
    known_ms: int  # time covered by readings no further apart than the gap limit

    @property
    def share(self) -> float | None:
        return self.matching_ms / self.known_ms if self.known_ms else None


def time_where(
    samples: Sequence[tuple[int, float]], *, start_ms: int, end_ms: int, max_gap_ms: int,
    predicate: Callable[[float], bool],
) -> TimeShare:
    """Time of `[start_ms, end_ms)` during which the held value satisfied `predicate`."""
    matching = known = 0
    ordered = sorted(samples)
    for i, (t, value) in enumerate(ordered):
        following = ordered[i + 1][0] if i + 1 < len(ordered) else None
        if following is None or following - t > max_gap_ms:
            continue  # the value's span is unknown past this reading
        lo, hi = max(t, start_ms), min(following, end_ms)
        if hi <= lo:
            continue
        known += hi - lo
        if predicate(value):
            matching += hi - lo
    return TimeShare(matching_ms=matching, known_ms=known)


def first_at_or_below(
    samples: Sequence[tuple[int, float]], *, start_ms: int, end_ms: int, threshold: float
) -> int | None:
    """The first moment in `[start_ms, end_ms)` the series reaches `threshold` from above,
    interpolated linearly between the two readings around the crossing."""
    inside = sorted(s for s in samples if start_ms <= s[0] < end_ms)
    for (t0, v0), (t1, v1) in itertools.pairwise(inside):
        if v0 <= threshold:
            return t0
        if v1 <= threshold:
            return round(t0 + (t1 - t0) * (v0 - threshold) / (v0 - v1))
    if inside and inside[-1][1] <= threshold:
        return inside[-1][0]
    return None


def time_per_value(
    samples: Sequence[tuple[int, float]], *, start_ms: int, end_ms: int, max_gap_ms: int
) -> dict[float, int]:
    """Milliseconds of `[start_ms, end_ms)` spent at each held value (states: 0, 1, 2…)."""
    spent: dict[float, int] = {}
    ordered = sorted(samples)
    for (t, value), (following, _) in itertools.pairwise(ordered):
        if following - t > max_gap_ms:
            continue
        lo, hi = max(t, start_ms), min(following, end_ms)
        if hi > lo:
            spent[value] = spent.get(value, 0) + hi - lo
    return spent


@dataclass(frozen=True, slots=True)
class BandTime:
    """Milliseconds a held value spent below, within (bounds included) and above a band."""

    below_ms: int
    within_ms: int
    above_ms: int

    @property
    def known_ms(self) -> int:
        return self.below_ms + self.within_ms + self.above_ms


def time_in_band(
    samples: Sequence[tuple[int, float]], *, start_ms: int, end_ms: int, max_gap_ms: int,
    low: float, high: float,
) -> BandTime:
    """Where the held value sat relative to `[low, high]` over `[start_ms, end_ms)`: the same
    holding rule as `time_where`, so hourly figures add up to the period's exactly."""
    below = time_where(samples, start_ms=start_ms, end_ms=end_ms, max_gap_ms=max_gap_ms,
                       predicate=lambda v: v < low)
    within = time_where(samples, start_ms=start_ms, end_ms=end_ms, max_gap_ms=max_gap_ms,
                        predicate=lambda v: low <= v <= high)
    return BandTime(below_ms=below.matching_ms, within_ms=within.matching_ms,
                    above_ms=within.known_ms - within.matching_ms - below.matching_ms)


@dataclass(frozen=True, slots=True)
class StateSplit:
    """Milliseconds at each held state inside a set of spans (planned busy time) and outside
    them; `straddling` counts the hourly rollups that a span boundary cuts (an hour's seconds
    cannot be split: the figure needs raw readings then)."""

    inside: dict[float, int]
    outside: dict[float, int]
    straddling: int = 0


def _overlap(spans: Sequence[tuple[int, int]], lo: int, hi: int) -> int:
    """Milliseconds of `[lo, hi)` covered by sorted disjoint `spans`."""
    covered = 0
    for i in range(max(0, bisect.bisect_right(spans, (lo, lo)) - 1), len(spans)):
        a, b = spans[i]
        if a >= hi:
            break
        covered += max(0, min(b, hi) - max(a, lo))
    return covered


def states_by_spans(
    samples: Sequence[tuple[int, float]], *, spans: Sequence[tuple[int, int]], start_ms: int,
    end_ms: int, max_gap_ms: int,
) -> StateSplit:
    """Time at each held value of `[start_ms, end_ms)`, inside and outside `spans` (sorted,
    disjoint): the holding rule of `time_per_value`, so the two parts add up to its figure.
    One pass: the readings are sorted, so the first span that may cover a reading only moves
    forward."""
    inside: dict[float, int] = {}
    outside: dict[float, int] = {}
    first = 0
    for (t, value), (following, _) in itertools.pairwise(sorted(samples)):
        if following - t > max_gap_ms:
            continue
        lo, hi = max(t, start_ms), min(following, end_ms)
        if hi <= lo:
            continue
        while first < len(spans) and spans[first][1] <= lo:
            first += 1
        within = 0
        for i in range(first, len(spans)):
            a, b = spans[i]
            if a >= hi:
                break
            within += min(b, hi) - max(a, lo)
        inside[value] = inside.get(value, 0) + within
        outside[value] = outside.get(value, 0) + (hi - lo - within)
    return StateSplit(inside=inside, outside=outside)


def hours_by_spans(rows: Sequence[tuple[int, float, float]], *,
                   spans: Sequence[tuple[int, int]]) -> StateSplit:
    """The same split from hourly rollups `(hour start ms, state, seconds)`: an hour wholly
    inside or outside the spans goes there; an hour a boundary cuts is counted in
    `straddling` and nowhere else."""
    inside: dict[float, int] = {}
    outside: dict[float, int] = {}
    straddling: set[int] = set()
    for hour, state, seconds in rows:
        within = _overlap(spans, hour, hour + 3_600_000)
        ms = round(seconds * 1000)
        if within == 3_600_000:
            inside[state] = inside.get(state, 0) + ms
        elif within == 0:
            outside[state] = outside.get(state, 0) + ms
        elif ms:
            straddling.add(hour)
    return StateSplit(inside=inside, outside=outside, straddling=len(straddling))
