"""The blast freezer / frozen store (R290): cabinet air, product, refrigeration cycle, leaks.

Physics, in the order of a step:

- cabinet air is one thermal mass (air, shelves, evaporator metal) gaining heat through the
  walls, the open door, the evaporator fans, the defrost heaters and the product, and losing
  the evaporator's capacity while the compressor runs;
- the product is one lump described by its enthalpy (carrots,
  docs/sources.md#simulator-parameters): sensible heat above
  the freezing point (-1.7 degC, 3.9 kJ/kg/K), latent heat (276 kJ/kg) released over a
  0.5 K band below it - the plateau of the core temperature - then frozen sensible heat
  (2.0 kJ/kg/K) down to -18 degC and below;
- the compressor follows a thermostat on the cabinet air (set point and differential, minimum
  on and off times, as a Carel ir33 does); the evaporator sits 8 K below the air when it runs;
  capacity and COP fall with the evaporating temperature (COP ~1.1 at -43 degC evaporating,
  docs/sources.md#simulator-parameters: ~1-1.5 at -35/-40 degC); pressures are R290's
  saturation pressures at the
  evaporating and condensing temperatures;
- electricity: compressor + evaporator and condenser fans + defrost heaters + controls.

A cycle: holding an empty cabinet at -25 degC (thermostat cycling, a defrost every 6 h, a
door opened now and then), loading (door open a few minutes, 200-400 kg of product at
4-10 degC, core probe inserted), freezing at -35 degC until the core reaches -20 degC,
unloading (door open), back to holding. The first load comes 10 minutes after the start.
The refrigerant leak detector reads a few ppm of noise; `start_leak` makes it see a leak.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from simulators import refrigerant
from simulators.model import MachineModel, ornstein_uhlenbeck, relax

HOLDING, LOADING, FREEZING, UNLOADING = 0, 1, 2, 3

FREEZING_POINT_C = -1.7
PLATEAU_BAND_K = 0.5
LATENT_HEAT_J_KG = 276e3
CP_UNFROZEN_J_KG_K = 3900.0
CP_FROZEN_J_KG_K = 2000.0
PRODUCT_UA_W_KG_K = 0.5  # heat transfer air <-> product, per kg on the trays
END_CORE_C = -20.0

AIR_CAPACITY_J_K = 400e3
WALL_UA_W_K = 25.0
DOOR_UA_W_K = 700.0
CAPACITY_W = 12_000.0  # evaporator capacity at -43 degC evaporating
EVAPORATOR_APPROACH_K = 8.0
CONDENSER_APPROACH_K = 15.0
EVAPORATOR_FANS_W = 900.0
CONDENSER_FAN_W = 450.0
DEFROST_HEATER_W = 3000.0
DEFROST_HEAT_TO_AIR = 0.3
CONTROLS_W = 60.0
HOLDING_SET_POINT_C = -25.0
FREEZING_SET_POINT_C = -35.0
DIFFERENTIAL_K = 2.0
MIN_ON_S = 60.0
MIN_OFF_S = 180.0
DEFROST_EVERY_S = 6 * 3600.0
DEFROST_DURATION_S = 20 * 60.0
DOOR_ALARM_AFTER_S = 5 * 60.0
HIGH_TEMP_ALARM_C = -12.0
HIGH_TEMP_ALARM_AFTER_S = 20 * 60.0


def product_temperature_c(enthalpy_j_kg: float) -> float:
    """Product temperature from its specific enthalpy (0 = unfrozen at the freezing point)."""
    if enthalpy_j_kg >= 0:
        return FREEZING_POINT_C + enthalpy_j_kg / CP_UNFROZEN_J_KG_K
    if enthalpy_j_kg >= -LATENT_HEAT_J_KG:
        return FREEZING_POINT_C - PLATEAU_BAND_K * (-enthalpy_j_kg / LATENT_HEAT_J_KG)
    return (FREEZING_POINT_C - PLATEAU_BAND_K
            - (-enthalpy_j_kg - LATENT_HEAT_J_KG) / CP_FROZEN_J_KG_K)


def product_enthalpy_j_kg(temp_c: float) -> float:
    """Inverse of `product_temperature_c` for an unfrozen or fully frozen product."""
    if temp_c >= FREEZING_POINT_C:
        return (temp_c - FREEZING_POINT_C) * CP_UNFROZEN_J_KG_K
    below = FREEZING_POINT_C - temp_c
    if below <= PLATEAU_BAND_K:
        return -LATENT_HEAT_J_KG * below / PLATEAU_BAND_K
    return -LATENT_HEAT_J_KG - (below - PLATEAU_BAND_K) * CP_FROZEN_J_KG_K


class FreezerModel(MachineModel):
    """Blast freezer with an R290 condensing unit, a Carel-like controller and a leak detector."""

    name: ClassVar[str] = "freezer"
    bindings: ClassVar[dict[str, str]] = {
        "electric_energy": "electric_energy_kwh",
        "electric_power": "electric_power_w",
        "compressor_power": "compressor_power_w",
        "cabinet_air_temp": "cabinet_air_temp_c",
        "evaporator_temp": "evaporator_temp_c",
        "product_core_temp": "product_core_temp_c",
        "evaporator_pressure": "evaporator_pressure_bar",
        "condenser_pressure": "condenser_pressure_bar",
        "door_open": "door_open",
        "compressor_running": "compressor_running",
        "fan_running": "fan_running",
        "refrigerant_leak": "refrigerant_leak_ppm",
        "batch_mass": "batch_mass_kg",
        "ambient_temp": "room_temp_c",
    }
    point_fallbacks: ClassVar[dict[str, str]] = {
        # The compressor's own meter: no role of its own, but its counter must still count.
        "carlo-gavazzi-em24.import_energy_kwh": "compressor_energy_kwh",
        "carel-ir33.virtual_probe_c": "cabinet_air_temp_c",
        "carel-ir33.probe_1_c": "cabinet_air_temp_c",
        "carel-ir33.probe_2_c": "evaporator_temp_c",
        "carel-ir33.probe_3_c": "product_core_temp_c",
        "carel-ir33.compressor_relay": "compressor_running",
        "carel-ir33.defrost_relay": "defrost_running",
        "carel-ir33.fan_relay": "fan_running",
        "carel-ir33.digital_input_1": "door_open",
        "carel-ir33.defrost_active": "defrost_running",
        "carel-ir33.door_open": "door_open",
        "carel-ir33.high_temp_alarm": "high_temp_alarm",
        "carel-ir33.door_open_alarm": "door_open_alarm",
    }

    def __init__(self, *, seed: int = 0, start: datetime | None = None) -> None:
        super().__init__(seed=seed, start=start)
        rng = self.rng
        self.room_temp_c = rng.uniform(16.0, 20.0)
        self.air_temp_c = HOLDING_SET_POINT_C + rng.uniform(0.0, DIFFERENTIAL_K)
        self.evaporator_temp_c = self.air_temp_c
        self.condenser_temp_c = self.room_temp_c
        self.probe_temp_c = self.air_temp_c
        self.compressor_on = False
        self._since_switch_s = MIN_OFF_S
        self.defrosting = False
        self._defrost_timer_s = rng.uniform(0.3, 0.9) * DEFROST_EVERY_S
        self._defrost_left_s = 0.0
        self.door_is_open = False
        self._door_left_s = 0.0
        self._door_open_for_s = 0.0
        self._warm_for_s = 0.0
        self.state = HOLDING
        self._state_left_s = 600.0  # first load 10 minutes after the start
        self.batch_number = 0
        self.product_kg = 0.0
        self.product_enthalpy_j_kg = 0.0
        self.frozen_mass_kg = rng.uniform(2000.0, 6000.0)
        self.electric_energy_kwh = rng.uniform(250.0, 450.0)
        self.compressor_energy_kwh = self.electric_energy_kwh * rng.uniform(0.70, 0.80)
        self._leak_noise_ppm = 1.5
        self.leak_ppm = 0.0
        self._leak_target_ppm = 0.0
        self._leak_left_s = 0.0
        self._pending_door_s = 0.0
        self._pending_leak: tuple[float, float] | None = None
        self.capacity_w = 0.0
        self._powers(0.0)

    # ------------------------------------------------------------------ events for tests

    def open_door(self, *, duration_s: float) -> None:
        """Have someone open the door for `duration_s` simulated seconds (next step)."""
        self._pending_door_s = float(duration_s)

    def start_leak(self, *, ppm: float, duration_s: float) -> None:
        """Make the leak detector see `ppm` (reached in a few minutes) for `duration_s`."""
        self._pending_leak = (float(ppm), float(duration_s))

    # ----------------------------------------------------------------------------- physics

    def _step(self, dt_s: float) -> None:
        self._events(dt_s)
        self._thermostat(dt_s)
        self._heat(dt_s)
        self._powers(dt_s)
        self._alarms(dt_s)
        self._batch(dt_s)

    def _events(self, dt_s: float) -> None:
        rng = self.rng
        if self._pending_door_s > 0:
            self._door_left_s = max(self._door_left_s, self._pending_door_s)
            self._pending_door_s = 0.0
        if self._pending_leak is not None:
            self._leak_target_ppm, self._leak_left_s = self._pending_leak
            self._pending_leak = None
        # Someone checks the store now and then while it holds.
        if self.state == HOLDING and self._door_left_s <= 0 and \
                rng.random() < dt_s / (4 * 3600.0):
            self._door_left_s = rng.uniform(20.0, 90.0)
        self._door_left_s = max(0.0, self._door_left_s - dt_s)
        self.door_is_open = self._door_left_s > 0 or self.state in (LOADING, UNLOADING)
        self._door_open_for_s = self._door_open_for_s + dt_s if self.door_is_open else 0.0
        self.room_temp_c = ornstein_uhlenbeck(rng, self.room_temp_c, mean=18.0, tau_s=3 * 3600.0,
                                              sigma=1.0, dt_s=dt_s)
        self._leak_noise_ppm = ornstein_uhlenbeck(rng, self._leak_noise_ppm, mean=1.5,
                                                  tau_s=600.0, sigma=1.0, dt_s=dt_s)
        if self._leak_left_s > 0:
            self._leak_left_s -= dt_s
            self.leak_ppm = relax(self.leak_ppm, self._leak_target_ppm, tau_s=120.0, dt_s=dt_s)
        else:
            self.leak_ppm = relax(self.leak_ppm, 0.0, tau_s=600.0, dt_s=dt_s)

    @property
    def set_point_c(self) -> float:
        return FREEZING_SET_POINT_C if self.state == FREEZING else HOLDING_SET_POINT_C

    def _thermostat(self, dt_s: float) -> None:
        self._since_switch_s += dt_s
        if self.state == HOLDING and not self.defrosting:
            self._defrost_timer_s -= dt_s
            if self._defrost_timer_s <= 0:
                self.defrosting = True
                self._defrost_left_s = DEFROST_DURATION_S
        if self.defrosting:
            self._defrost_left_s -= dt_s
            if self._defrost_left_s <= 0:
                self.defrosting = False
                self._defrost_timer_s = DEFROST_EVERY_S
        want = self.compressor_on
        if self.defrosting:
            want = False
        elif self.air_temp_c > self.set_point_c + DIFFERENTIAL_K:
            want = True
        elif self.air_temp_c <= self.set_point_c:
            want = False
        if want != self.compressor_on and \
                self._since_switch_s >= (MIN_ON_S if self.compressor_on else MIN_OFF_S):
            self.compressor_on = want
            self._since_switch_s = 0.0

    @property
    def fans_on(self) -> bool:
        # Evaporator fans stop during defrost and with the door open (ice and warm air).
        return not self.defrosting and not self.door_is_open and (
            self.compressor_on or self.state == FREEZING)

    def _heat(self, dt_s: float) -> None:
        if self.compressor_on:
            evaporator_target = self.air_temp_c - EVAPORATOR_APPROACH_K
            condenser_target = self.room_temp_c + CONDENSER_APPROACH_K
        elif self.defrosting:
            evaporator_target, condenser_target = 10.0, self.room_temp_c
        else:
            evaporator_target, condenser_target = self.air_temp_c, self.room_temp_c
        self.evaporator_temp_c = relax(self.evaporator_temp_c, evaporator_target, tau_s=90.0,
                                       dt_s=dt_s)
        self.condenser_temp_c = relax(self.condenser_temp_c, condenser_target, tau_s=300.0,
                                      dt_s=dt_s)
        capacity = 0.0
        if self.compressor_on:
            capacity = CAPACITY_W * min(1.6, max(0.4, 1 + 0.025 * (self.evaporator_temp_c + 43)))
        self.capacity_w = capacity
        product_w = 0.0
        if self.product_kg > 0:
            product_temp = product_temperature_c(self.product_enthalpy_j_kg)
            product_w = PRODUCT_UA_W_KG_K * self.product_kg * (product_temp - self.air_temp_c)
            self.product_enthalpy_j_kg -= product_w * dt_s / self.product_kg
        gains = (WALL_UA_W_K * (self.room_temp_c - self.air_temp_c)
                 + (DOOR_UA_W_K * (self.room_temp_c - self.air_temp_c) if self.door_is_open else 0)
                 + (EVAPORATOR_FANS_W if self.fans_on else 0.0)
                 + (DEFROST_HEATER_W * DEFROST_HEAT_TO_AIR if self.defrosting else 0.0)
                 + product_w)
        self.air_temp_c += (gains - capacity) * dt_s / AIR_CAPACITY_J_K
        if self.product_kg > 0:
            self.probe_temp_c = product_temperature_c(self.product_enthalpy_j_kg)
        else:
            # Without product the needle probe hangs in the cabinet air.
            self.probe_temp_c = relax(self.probe_temp_c, self.air_temp_c, tau_s=60.0, dt_s=dt_s)

    def _powers(self, dt_s: float) -> None:
        cop = min(3.0, max(0.8, 1.1 + 0.035 * (self.evaporator_temp_c + 43.0)))
        self.compressor_power_w = self.capacity_w / cop if self.compressor_on else 0.0
        self.electric_power_w = (self.compressor_power_w
                                 + (EVAPORATOR_FANS_W if self.fans_on else 0.0)
                                 + (CONDENSER_FAN_W if self.compressor_on else 0.0)
                                 + (DEFROST_HEATER_W if self.defrosting else 0.0)
                                 + CONTROLS_W)
        self.electric_energy_kwh += self.electric_power_w * dt_s / 3.6e6
        self.compressor_energy_kwh += self.compressor_power_w * dt_s / 3.6e6

    def _alarms(self, dt_s: float) -> None:
        warm = self.state == HOLDING and self.air_temp_c > HIGH_TEMP_ALARM_C
        self._warm_for_s = self._warm_for_s + dt_s if warm else 0.0

    def _batch(self, dt_s: float) -> None:
        self._state_left_s -= dt_s
        rng = self.rng
        if self.state == HOLDING and self._state_left_s <= 0 and not self.defrosting:
            self.state = LOADING
            self._state_left_s = rng.uniform(180.0, 300.0)
            self.batch_number += 1
            self.product_kg = rng.uniform(200.0, 400.0)
            self.product_enthalpy_j_kg = product_enthalpy_j_kg(rng.uniform(4.0, 10.0))
        elif self.state == LOADING and self._state_left_s <= 0:
            self.state = FREEZING
        elif self.state == FREEZING and \
                product_temperature_c(self.product_enthalpy_j_kg) <= END_CORE_C:
            self.state = UNLOADING
            self._state_left_s = rng.uniform(180.0, 300.0)
        elif self.state == UNLOADING and self._state_left_s <= 0:
            self.frozen_mass_kg += self.product_kg
            self.product_kg = 0.0
            self.state = HOLDING
            self._state_left_s = rng.uniform(1.0, 3.0) * 3600.0

    # ------------------------------------------------------------------------------- truth

    def values(self) -> dict[str, float]:
        return {
            "cabinet_air_temp_c": self.air_temp_c,
            "evaporator_temp_c": self.evaporator_temp_c,
            "product_core_temp_c": self.probe_temp_c,
            "condenser_temp_c": self.condenser_temp_c,
            "room_temp_c": self.room_temp_c,
            "evaporator_pressure_bar": refrigerant.saturation_pressure_bar(self.evaporator_temp_c),
            "condenser_pressure_bar": refrigerant.saturation_pressure_bar(self.condenser_temp_c),
            "set_point_c": self.set_point_c,
            "door_open": 1.0 if self.door_is_open else 0.0,
            "compressor_running": 1.0 if self.compressor_on else 0.0,
            "defrost_running": 1.0 if self.defrosting else 0.0,
            "fan_running": 1.0 if self.fans_on else 0.0,
            "high_temp_alarm": 1.0 if self._warm_for_s >= HIGH_TEMP_ALARM_AFTER_S else 0.0,
            "door_open_alarm": 1.0 if self._door_open_for_s >= DOOR_ALARM_AFTER_S else 0.0,
            "electric_power_w": self.electric_power_w,
            "electric_energy_kwh": self.electric_energy_kwh,
            "compressor_power_w": self.compressor_power_w,
            "compressor_energy_kwh": self.compressor_energy_kwh,
            "refrigerant_leak_ppm": max(0.0, self.leak_ppm + self._leak_noise_ppm),
            "batch_state": float(self.state),
            "batch_number": float(self.batch_number),
            "batch_mass_kg": self.product_kg,
            "frozen_mass_kg": self.frozen_mass_kg,
        }
