"""What every machine model is: plain-Python physics on simulated time, no Modbus in sight.

A model owns its state, advances it by `step(dt_s)` and tells its true variables with
`values()` (names carry their unit: `grid_import_kwh`, `cabinet_air_temp_c`). How those
variables reach registers is the server's business; a model only says which variable a role
means (`bindings`) and which variable feeds template points that no sensor uses
(`point_fallbacks`, keyed `template.point`).
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar

from simulators.clock import default_start, sim_time


class MachineModel(ABC):
    """Base of the three machine models."""

    name: ClassVar[str]
    #: role (or `role:material` for roles told apart by their `material` attribute, or
    #: `role@location` for probes told apart by their sensor's `location`) -> variable
    bindings: ClassVar[Mapping[str, str]]
    #: `template-model.point-key` -> variable, for points no sensor of the site uses
    point_fallbacks: ClassVar[Mapping[str, str]] = {}

    def __init__(self, *, seed: int = 0, start: datetime | None = None) -> None:
        # A string seed is hashed by random (version 2 seeding): stable across runs and
        # distinct per machine for the same user seed.
        self.rng = random.Random(f"{self.name}:{seed}")
        self.start = start if start is not None else default_start()
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.elapsed_s = 0.0

    def continue_meters(self, meters: Mapping[str, float]) -> None:
        """Start the cumulative meters named in `meters` from those values (e.g. where a
        recorded history ended), so that a meter never drops between the two; each keeps its
        own type (a count stays an integer)."""
        known = self.values()
        for name, value in meters.items():
            if name not in known:
                raise ValueError(f"{self.name} has no variable {name!r}")
            setattr(self, name, type(getattr(self, name))(value))

    @property
    def now(self) -> datetime:
        """Simulated date and time."""
        return sim_time(self.start, self.elapsed_s)

    def step(self, dt_s: float) -> None:
        """Advance the physics by `dt_s` simulated seconds."""
        if not (dt_s > 0 and math.isfinite(dt_s)):
            raise ValueError(f"dt_s must be a positive number, got {dt_s}")
        self.elapsed_s += dt_s
        self._step(dt_s)

    @abstractmethod
    def _step(self, dt_s: float) -> None:
        """Integrate over the step just ended: `now` is already its end, the time of the
        values the step computes."""

    @abstractmethod
    def values(self) -> dict[str, float]:
        """The true variables now; the same names at every call."""

    def variable_for(self, *, role: str, attributes: Mapping[str, str],
                     location: str = "") -> str | None:
        """The variable a sensor of this role (and attributes, location) reads, if the model
        has one."""
        if location and f"{role}@{location}" in self.bindings:
            return self.bindings[f"{role}@{location}"]
        material = attributes.get("material")
        if material is not None and f"{role}:{material}" in self.bindings:
            return self.bindings[f"{role}:{material}"]
        return self.bindings.get(role)

    def noise(self, sigma: float) -> float:
        """Gaussian measurement-like noise from the model's own generator."""
        return self.rng.gauss(0.0, sigma)


def ornstein_uhlenbeck(
    rng: random.Random, value: float, *, mean: float, tau_s: float, sigma: float, dt_s: float
) -> float:
    """One exact step of a mean-reverting random process (weather, drifts).

    Exact discretisation, so that the statistics do not depend on the step size.
    """
    decay = math.exp(-dt_s / tau_s)
    return mean + (value - mean) * decay + sigma * math.sqrt(1.0 - decay * decay) * rng.gauss(
        0.0, 1.0)


def relax(value: float, target: float, *, tau_s: float, dt_s: float) -> float:
    """First-order lag of `value` towards `target` with time constant `tau_s`."""
    return target + (value - target) * math.exp(-dt_s / tau_s)
