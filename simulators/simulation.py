"""A machine model running on the wall clock, with its ground truth.

`advance()` brings the physics up to the wall clock (in steps no longer than `max_step_s`
simulated seconds) and records a truth sample stamped with that wall time, plus samples of
the intermediate steps at their own wall times (at most one every `sample_every_ms`, to bound
memory at high speeds). The server calls it on a periodic timer and again at every Modbus
read, so the registers served are the truth at the instant of the read.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from simulators.clock import SimClock
from simulators.model import MachineModel
from simulators.truth import Truth


class Simulation:
    """One machine: model + clock + truth. Thread-safe."""

    def __init__(
        self,
        model: MachineModel,
        *,
        clock: SimClock,
        max_step_s: float = 5.0,
        max_samples: int = 500_000,
        sample_every_ms: int = 20,
    ) -> None:
        if not max_step_s > 0:
            raise ValueError("max_step_s must be positive")
        self.model = model
        self.clock = clock
        self.max_step_s = max_step_s
        self.sample_every_ms = sample_every_ms
        self.truth = Truth(tuple(model.values()), max_samples=max_samples)
        self._lock = threading.Lock()
        self._last_wall_ms = -1
        self._last_values: Mapping[str, float] = {}
        self.advance(clock.wall_start_s)

    @property
    def name(self) -> str:
        return self.model.name

    def advance(self, wall_s: float | None = None) -> Mapping[str, float]:
        """Step the physics up to `wall_s` (now by default), record and return the truth.

        Time is quantised to the millisecond of the truth's time base: within one millisecond
        the state does not move, so every value served is exactly a recorded sample.
        """
        with self._lock:
            wall = self.clock.wall_s() if wall_s is None else wall_s
            # The wall clock may step back (NTP); the truth's time base must not.
            wall_ms = round(wall * 1000)
            if wall_ms <= self._last_wall_ms:
                return self._last_values
            model = self.model
            target = self.clock.elapsed_s(wall_ms / 1000)
            recorded_ms = self._last_wall_ms
            # The tolerance keeps float rounding from asking for a nanosecond step.
            while target - model.elapsed_s > 1e-6:
                model.step(min(self.max_step_s, target - model.elapsed_s))
                step_ms = round(self.clock.wall_at(model.elapsed_s) * 1000)
                if recorded_ms + self.sample_every_ms <= step_ms < wall_ms:
                    self.truth.record(step_ms, model.now, model.values())
                    recorded_ms = step_ms
            values = model.values()
            self.truth.record(wall_ms, model.now, values)
            self._last_wall_ms = wall_ms
            self._last_values = values
            return values
