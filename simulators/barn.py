"""The dryer's barn: temperature probes pushed into stored bales, one bale heating up.

Hay stored too wet keeps respiring; microbial heat builds up in the stack and can end in
spontaneous combustion. The agricultural scale (docs/sources.md#hay-self-heating): below 40 °C
normal, 40-60 °C watch, above 60 °C danger, above 80 °C call the fire brigade.

Sound bales follow the barn's air with a lag of days (a bale's thermal inertia) plus a few
degrees of residual respiration. One bale (`HEATING_PROBE`) self-heats along a logistic curve
from its sound temperature to `peak_c`: slow at first, fastest halfway, levelling off near the
peak, as field records of hay fires show. Its time-scale is a parameter, so a test crosses 40,
60 and 80 °C in seconds while the demo takes days. No random draws: adding the barn leaves the
dryer's seeded weather and batches as they were.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Where each probe is, as the site configuration names it (sensor `location`).
PROBES = ("travée 1, rang bas", "travée 1, rang haut", "travée 2, rang bas",
          "travée 2, rang haut")
HEATING_PROBE = 2  # 0-based: the third probe's bale heats
BALE_TAU_S = 2 * 86_400.0  # a bale's core follows the barn air over days
RESPIRATION_C = (3.0, 2.0, 4.0, 2.5)  # residual respiration of sound bales, per probe
STEEPNESS = 10.0  # logistic slope over the heating's time-scale


@dataclass
class Heating:
    """A self-heating episode of one bale: logistic from `base_c` to `peak_c`, centred
    halfway through `duration_s` (simulated seconds) from `start_s`."""

    start_s: float
    duration_s: float
    peak_c: float = 85.0

    def temperature(self, elapsed_s: float, base_c: float) -> float:
        x = (elapsed_s - self.start_s) / self.duration_s
        if x <= 0:
            return base_c
        rise = 1 / (1 + math.exp(-STEEPNESS * (x - 0.5)))
        start = 1 / (1 + math.exp(STEEPNESS * 0.5))  # the curve's value at x = 0
        return base_c + (self.peak_c - base_c) * (rise - start) / (1 - start)

    def crossing_s(self, threshold_c: float, base_c: float) -> float | None:
        """Simulated time at which the bale crosses `threshold_c` (None: never)."""
        if not base_c < threshold_c < self.peak_c:
            return None
        start = 1 / (1 + math.exp(STEEPNESS * 0.5))
        rise = start + (threshold_c - base_c) / (self.peak_c - base_c) * (1 - start)
        x = 0.5 - math.log(1 / rise - 1) / STEEPNESS
        return self.start_s + x * self.duration_s


class Barn:
    """The probes' temperatures, stepped with the dryer's weather."""

    def __init__(self, *, ambient_c: float, heating: Heating | None) -> None:
        self.sound_c = [ambient_c + r for r in RESPIRATION_C]
        self.heating = heating
        self.probes_c = list(self.sound_c)

    def step(self, *, elapsed_s: float, ambient_c: float, dt_s: float) -> None:
        decay = math.exp(-dt_s / BALE_TAU_S)
        for i, respiration in enumerate(RESPIRATION_C):
            target = ambient_c + respiration
            self.sound_c[i] = target + (self.sound_c[i] - target) * decay
        self.probes_c = list(self.sound_c)
        if self.heating is not None:
            self.probes_c[HEATING_PROBE] = self.heating.temperature(
                elapsed_s, self.sound_c[HEATING_PROBE])

    def start_heating(self, *, now_s: float, duration_s: float, peak_c: float = 85.0) -> Heating:
        """Make the heating bale start self-heating now, over `duration_s` simulated seconds."""
        self.heating = Heating(start_s=now_s, duration_s=duration_s, peak_c=peak_c)
        return self.heating

    def values(self) -> dict[str, float]:
        return {f"forage_probe_{i + 1}_c": t for i, t in enumerate(self.probes_c)}
