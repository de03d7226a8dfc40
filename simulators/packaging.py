"""The low-carbon packaging line: shifts, orders, micro-stops, faults, counters.

The line works two shifts, 06:00-22:00 every day (site time). During a shift it runs, stops
briefly (micro-stops: 15-90 s, about every 8 minutes of running), breaks down now and then
(faults: 5-25 min, about every 3 hours) and changes over between orders (10-20 min). While
running it packs at 92-100 % of the order's nominal speed; about 1.5 % of the units are
rejected. Every unit made (good or rejected) uses recycled cardboard and compostable PLA
film; pneumatics use compressed air while running and leak a little when stopped in a shift.
Units are only made in a step that starts with the line running.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import ClassVar

from simulators.clock import SITE_TIMEZONE, sim_time
from simulators.model import MachineModel, ornstein_uhlenbeck

STOPPED, RUNNING, FAULT = 0, 1, 2

SHIFT_START_H, SHIFT_END_H = 6.0, 22.0
NOMINAL_SPEEDS_UPM = (24.0, 30.0, 36.0)
MICRO_STOP_EVERY_S = 8 * 60.0
FAULT_EVERY_S = 3 * 3600.0
REJECT_RATE = 0.015
CARDBOARD_KG_PER_UNIT = 0.045
PLA_FILM_KG_PER_UNIT = 0.006
AIR_RUNNING_M3_H = 18.0
AIR_LEAK_M3_H = 1.5
POWER_RUNNING_W = 5200.0
POWER_IDLE_W = 1600.0  # sealing jaws kept hot between runs
POWER_OFF_SHIFT_W = 120.0


class PackagingModel(MachineModel):
    """Packaging line with its PLC counters and a single-phase meter."""

    name: ClassVar[str] = "packaging"
    bindings: ClassVar[dict[str, str]] = {
        "electric_energy": "electric_energy_kwh",
        "electric_power": "electric_power_w",
        "units_packed": "units_packed",
        "units_rejected": "units_rejected",
        "line_state": "line_state",
        "line_speed": "line_speed_upm",
        "material_consumed:cardboard": "cardboard_kg",
        "material_consumed:pla_film": "pla_film_kg",
        "compressed_air_volume": "compressed_air_m3",
    }

    def __init__(self, *, seed: int = 0, start: datetime | None = None) -> None:
        super().__init__(seed=seed, start=start)
        rng = self.rng
        self.units_packed = rng.randrange(10_000, 50_000)
        self.units_rejected = int(self.units_packed * REJECT_RATE)
        made = self.units_packed + self.units_rejected
        self.cardboard_kg = made * CARDBOARD_KG_PER_UNIT
        self.pla_film_kg = made * PLA_FILM_KG_PER_UNIT
        self.compressed_air_m3 = rng.uniform(100.0, 400.0)
        self.electric_energy_kwh = rng.uniform(200.0, 400.0)
        self.order_number = 0
        self._new_order()
        self._drift = 0.0
        self._made_fraction = 0.0
        self._stopped_until_s = 0.0
        self._pending_fault_s = 0.0
        self.state = RUNNING if self.in_shift else STOPPED
        self.speed_upm = self._running_speed() if self.state == RUNNING else 0.0
        self.electric_power_w = self._power()

    # ------------------------------------------------------------------ events for tests

    def fault(self, *, duration_s: float) -> None:
        """Break the line down for `duration_s` simulated seconds (from the next step)."""
        self._pending_fault_s = float(duration_s)

    # ----------------------------------------------------------------------------- physics

    @property
    def in_shift(self) -> bool:
        """Whether the line is in a shift now (simulated time)."""
        return self._in_shift_at(self.elapsed_s)

    def _in_shift_at(self, elapsed_s: float) -> bool:
        local = sim_time(self.start, elapsed_s).astimezone(SITE_TIMEZONE)
        hour = local.hour + local.minute / 60 + local.second / 3600
        return SHIFT_START_H <= hour < SHIFT_END_H

    def _new_order(self) -> None:
        self.order_number += 1
        self.order_size = self.rng.randrange(1500, 4000)
        self.order_done = 0
        self.nominal_speed_upm = self.rng.choice(NOMINAL_SPEEDS_UPM)

    def _running_speed(self) -> float:
        return self.nominal_speed_upm * min(1.0, max(0.9, 0.96 + self._drift))

    def _power(self) -> float:
        if self.state == RUNNING:
            return POWER_RUNNING_W * math.sqrt(self.speed_upm / self.nominal_speed_upm)
        return POWER_IDLE_W if self.in_shift else POWER_OFF_SHIFT_W

    def _step(self, dt_s: float) -> None:
        rng = self.rng
        in_shift = self._in_shift_at(self.elapsed_s - dt_s)
        # Production and consumption over the step, from the state it starts in.
        if self.state == RUNNING:
            self._made_fraction += self.speed_upm * dt_s / 60.0
            made = int(self._made_fraction)
            self._made_fraction -= made
            rejected = sum(1 for _ in range(made) if rng.random() < REJECT_RATE)
            self.units_packed += made - rejected
            self.units_rejected += rejected
            self.order_done += made
            self.cardboard_kg += made * CARDBOARD_KG_PER_UNIT
            self.pla_film_kg += made * PLA_FILM_KG_PER_UNIT
            self.compressed_air_m3 += AIR_RUNNING_M3_H * dt_s / 3600.0
        elif in_shift:
            self.compressed_air_m3 += AIR_LEAK_M3_H * dt_s / 3600.0
        self.electric_energy_kwh += self.electric_power_w * dt_s / 3.6e6
        self._drift = ornstein_uhlenbeck(rng, self._drift, mean=0.0, tau_s=1800.0, sigma=0.03,
                                         dt_s=dt_s)
        self._transitions(dt_s)
        self.speed_upm = self._running_speed() if self.state == RUNNING else 0.0
        self.electric_power_w = self._power()

    def _transitions(self, dt_s: float) -> None:
        rng = self.rng
        now_s = self.elapsed_s
        if self._pending_fault_s > 0:
            self.state = FAULT
            self._stopped_until_s = now_s + self._pending_fault_s
            self._pending_fault_s = 0.0
            return
        if not self._in_shift_at(now_s):
            self.state = STOPPED
            self._stopped_until_s = now_s
            return
        if self.state == RUNNING:
            if self.order_done >= self.order_size:
                self.state = STOPPED  # changeover
                self._stopped_until_s = now_s + rng.uniform(600.0, 1200.0)
                self._new_order()
            elif rng.random() < -math.expm1(-dt_s / FAULT_EVERY_S):
                self.state = FAULT
                self._stopped_until_s = now_s + rng.uniform(300.0, 1500.0)
            elif rng.random() < -math.expm1(-dt_s / MICRO_STOP_EVERY_S):
                self.state = STOPPED
                self._stopped_until_s = now_s + rng.uniform(15.0, 90.0)
        elif now_s >= self._stopped_until_s:
            self.state = RUNNING

    # ------------------------------------------------------------------------------- truth

    def values(self) -> dict[str, float]:
        return {
            "line_state": float(self.state),
            "line_speed_upm": self.speed_upm,
            "nominal_speed_upm": self.nominal_speed_upm,
            "order_number": float(self.order_number),
            "units_packed": float(self.units_packed),
            "units_rejected": float(self.units_rejected),
            "cardboard_kg": self.cardboard_kg,
            "pla_film_kg": self.pla_film_kg,
            "compressed_air_m3": self.compressed_air_m3,
            "electric_power_w": self.electric_power_w,
            "electric_energy_kwh": self.electric_energy_kwh,
        }
