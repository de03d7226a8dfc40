"""The simulation clock: wall-clock time in, simulated time out, at a chosen speed.

Readings are stamped by the gateway with the wall clock, so the ground truth is kept against
the wall clock too; the physics runs on simulated time (`speed` simulated seconds per wall
second, so that `speed=60` plays an hour per wall minute).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

SITE_TIMEZONE = ZoneInfo("Europe/Paris")


def default_start(*, hour: int = 7) -> datetime:
    """Today at `hour` (site time): mornings show the dryer's sun and the line's first shift."""
    today = datetime.now(SITE_TIMEZONE).date()
    return datetime(today.year, today.month, today.day, hour, tzinfo=SITE_TIMEZONE)


class SimClock:
    """Maps wall-clock seconds (UTC epoch) to simulated seconds elapsed since the start."""

    def __init__(self, *, speed: float = 1.0, wall: Callable[[], float] = time.time) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self._wall = wall
        self.wall_start_s = wall()

    def wall_s(self) -> float:
        """The wall clock now, in seconds since the epoch."""
        return self._wall()

    def elapsed_s(self, wall_s: float | None = None) -> float:
        """Simulated seconds elapsed at wall time `wall_s` (now when omitted)."""
        wall = self._wall() if wall_s is None else wall_s
        return max(0.0, (wall - self.wall_start_s) * self.speed)

    def wall_at(self, elapsed_s: float) -> float:
        """The wall time at which `elapsed_s` simulated seconds will have passed."""
        return self.wall_start_s + elapsed_s / self.speed


def sim_time(start: datetime, elapsed_s: float) -> datetime:
    """The simulated date and time `elapsed_s` after `start`."""
    return start + timedelta(seconds=elapsed_s)
