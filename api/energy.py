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
