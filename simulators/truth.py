"""Ground truth: the true state of a simulated machine, sampled at every physics step.

Samples are stamped with wall-clock milliseconds (UTC), the time base of the gateway's
readings, so that a test can ask what a sensor *should* have read at the instant a reading
was taken. Storage is columnar (one array of doubles per variable) to keep hours of samples
cheap; the oldest samples are dropped past `max_samples`.
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class TruthSample:
    """The true state at one instant."""

    wall_ms: int
    sim_time: datetime
    values: Mapping[str, float]


class Truth:
    """History of a machine's true variables, safe to read from any thread."""

    def __init__(self, names: Sequence[str], *, max_samples: int = 500_000) -> None:
        if max_samples < 2:
            raise ValueError("max_samples must be at least 2")
        self.names: tuple[str, ...] = tuple(names)
        self._max = max_samples
        self._lock = threading.Lock()
        self._wall_ms = array("q")
        self._columns = {name: array("d") for name in self.names}
        self._latest: TruthSample | None = None

    def record(self, wall_ms: int, sim_time: datetime, values: Mapping[str, float]) -> None:
        """Append a sample; a sample in the same millisecond as the last one replaces it."""
        with self._lock:
            if self._wall_ms and wall_ms < self._wall_ms[-1]:
                raise ValueError(f"truth sample at {wall_ms} ms is older than the last one")
            if self._wall_ms and wall_ms == self._wall_ms[-1]:
                for name in self.names:
                    self._columns[name][-1] = float(values[name])
            else:
                self._wall_ms.append(wall_ms)
                for name in self.names:
                    self._columns[name].append(float(values[name]))
                if len(self._wall_ms) > self._max:
                    # Drop the older half at once: amortised O(1) per sample.
                    drop = len(self._wall_ms) - self._max // 2
                    del self._wall_ms[:drop]
                    for column in self._columns.values():
                        del column[:drop]
            self._latest = TruthSample(wall_ms, sim_time,
                                       {name: float(values[name]) for name in self.names})

    def __len__(self) -> int:
        with self._lock:
            return len(self._wall_ms)

    def latest(self) -> TruthSample:
        """The most recent sample."""
        with self._lock:
            if self._latest is None:
                raise LookupError("no truth recorded yet")
            return self._latest

    def span_ms(self) -> tuple[int, int]:
        """Wall-clock ms of the oldest and the newest sample kept."""
        with self._lock:
            if not self._wall_ms:
                raise LookupError("no truth recorded yet")
            return self._wall_ms[0], self._wall_ms[-1]

    def value_at(self, name: str, wall_ms: float) -> float:
        """The true value of `name` at `wall_ms`, linearly interpolated between samples.

        After the newest sample the newest value is returned (it is what the device serves
        until the next step); before the oldest sample kept, LookupError.
        """
        with self._lock:
            column = self._column(name)
            times = self._wall_ms
            if not times or wall_ms < times[0]:
                raise LookupError(f"no truth for {name} at {wall_ms} ms (kept from "
                                  f"{times[0] if times else '-'} ms)")
            i = bisect_right(times, wall_ms)
            if i >= len(times):
                return column[-1]
            t0, t1 = times[i - 1], times[i]
            v0, v1 = column[i - 1], column[i]
            return v0 + (v1 - v0) * (wall_ms - t0) / (t1 - t0)

    def window(self, name: str, start_ms: float, end_ms: float) -> tuple[float, float]:
        """(min, max) of `name` over [start_ms, end_ms], ends interpolated.

        A reading taken somewhere in that window, at an instant its taker only knows roughly,
        must lie in this range (modulo register encoding).
        """
        if end_ms < start_ms:
            raise ValueError("end_ms is before start_ms")
        ends = [self.value_at(name, start_ms), self.value_at(name, end_ms)]
        with self._lock:
            column = self._column(name)
            lo = bisect_left(self._wall_ms, start_ms)
            hi = bisect_right(self._wall_ms, end_ms)
            inside = list(column[lo:hi])
        values = ends + inside
        return min(values), max(values)

    def series(self, name: str) -> list[tuple[int, float]]:
        """Every kept sample of `name` as (wall_ms, value)."""
        with self._lock:
            column = self._column(name)
            return list(zip(self._wall_ms, column, strict=True))

    def _column(self, name: str) -> array[float]:
        try:
            return self._columns[name]
        except KeyError:
            raise KeyError(f"unknown truth variable {name!r}; known: "
                           f"{', '.join(self.names)}") from None
