"""The energy-autonomous lucerne barn dryer: weather, solar air collectors, fans, PV, hay.

Physics, in the order of a step:

- weather: ambient temperature on a daily sine (min near 03:00, max near 15:00) plus a
  mean-reverting noise; a slowly wandering dew point gives the humidity; clouds (another
  mean-reverting process) dim Haurwitz's clear-sky irradiance;
- control: fans at full speed while the sun heats the collectors (irradiance >= 150 W/m2), at
  60 % for cold ventilation when the outdoor air is dry enough (RH < 75 %), off otherwise or
  when no batch is drying; the drive ramps the speed (affinity law: power ~ speed^3);
- solar collectors give 35-40 % of the irradiance as heat (docs/sources.md#simulator-parameters),
  which with the fan's own
  heat warms the drying air: T_in = T_ambient + (Q_solar + Q_fan) / (m_dot c_p);
- drying: the air leaving the hay approaches adiabatic saturation, with an efficiency that is
  constant while the hay is wet (constant-rate period) and falls linearly to zero as the
  moisture nears the equilibrium moisture of the drying air (falling-rate period); the water
  taken is m_dot x efficiency x (x_saturation - x_in), and the outlet air is cooled by the
  latent heat it carried away: the bed is adiabatic, the moist air's enthalpy
  1.006 t + W (2501 + 1.86 t) kJ/kg the same on both sides;
- electricity: the fan feeder is the dryer's only load; PV covers it first, the rest is
  imported, any surplus exported, so that consumption = import - export + PV exactly;
- airflow: the fans move a dry-air mass flow (their nominal volume at outdoor conditions); the
  airflow transmitter in the inlet duct reads it as a volume at the inlet air's state, ṁ × v_in,
  so that the api's air-side balance (airflow / v_in × (W_out − W_in)) finds the water the hay
  lost and, with the enthalpies, the heat: solar + fan heat raise the air from outdoor to inlet
  temperature, and the air's own heat below that pays for the rest of the evaporation;
- barn: probes in the stored bales, one of which self-heats (simulators/barn.py).

A batch (9-14 t of wilted lucerne at 60-65 % moisture) dries to 15 %, waits to be unloaded,
the cell stays empty for a while, then the next batch comes in.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import ClassVar

from simulators import air, sun
from simulators.barn import PROBES, Barn, Heating
from simulators.clock import SITE_TIMEZONE
from simulators.model import MachineModel, ornstein_uhlenbeck, relax

EMPTY, DRYING, FINISHED = 0, 1, 2

COLLECTOR_AREA_M2 = 400.0
PV_PEAK_W = 36_000.0
PV_PERFORMANCE_RATIO = 0.85
FAN_NOMINAL_W = 15_000.0
AIRFLOW_NOMINAL_M3_H = 45_000.0
FAN_HEAT_SHARE = 0.9  # of the fan's electricity that ends up warming the air stream
SUN_THRESHOLD_W_M2 = 150.0
COLD_VENTILATION_RH_PCT = 75.0
COLD_VENTILATION_SPEED = 0.6
FAN_RAMP_S = 120.0
TARGET_MOISTURE = 0.15
CRITICAL_MOISTURE = 0.45  # wet basis: below it the drying rate falls
EFFICIENCY_MAX = 0.85  # approach to saturation of the air leaving a wet, deep bed
SMOOTHING_S = 300.0
# The demo's heating bale starts after five simulated days and takes ten to peak (a fire
# develops over one to three weeks after baling); tests start one sooner with
# `barn.start_heating`.
BARN_HEATING = Heating(start_s=5 * 86_400.0, duration_s=10 * 86_400.0)


def equilibrium_moisture(rh_pct: float) -> float:
    """Wet-basis equilibrium moisture of hay in air at `rh_pct` (a simple sorption isotherm).

    About 7 % at 30 % RH, 10 % at 50 %, 19 % at 80 %: the range reported for lucerne hay.
    """
    rh = max(0.0, min(rh_pct, 100.0)) / 100.0
    return 0.05 + 0.22 * rh * rh


class DryerModel(MachineModel):
    """Lucerne barn dryer with solar air collectors, fans and a PV array."""

    name: ClassVar[str] = "dryer"
    bindings: ClassVar[dict[str, str]] = {
        "grid_import_energy": "grid_import_kwh",
        "grid_export_energy": "grid_export_kwh",
        "pv_energy": "pv_energy_kwh",
        "electric_energy": "electric_energy_kwh",
        "solar_heat_energy": "solar_heat_kwh",
        "grid_power": "grid_power_w",
        "pv_power": "pv_power_w",
        "fan_power": "fan_power_w",
        "electric_power": "fan_power_w",
        "solar_heat_power": "solar_heat_power_w",
        "irradiance": "irradiance_w_m2",
        "ambient_temp": "ambient_temp_c",
        "ambient_humidity": "ambient_rh_pct",
        "inlet_air_temp": "inlet_air_temp_c",
        "inlet_air_humidity": "inlet_rh_pct",
        "outlet_air_temp": "outlet_air_temp_c",
        "outlet_air_humidity": "outlet_rh_pct",
        "airflow": "airflow_m3_h",
        "hay_moisture": "hay_moisture_pct",
        "batch_mass": "batch_mass_kg",
        "fan_running": "fan_running",
        **{f"forage_temperature@{where}": f"forage_probe_{i + 1}_c"
           for i, where in enumerate(PROBES)},
    }

    def __init__(self, *, seed: int = 0, start: datetime | None = None) -> None:
        super().__init__(seed=seed, start=start)
        rng = self.rng
        self.collector_efficiency = rng.uniform(0.35, 0.40)
        # Weather: mean-reverting random processes, each smoothed by a first-order lag so that
        # values are smooth at the scale of a poll (a reading stamped a few ms off the read
        # still matches the truth).
        self._weather_raw = [rng.gauss(0.0, 0.8), rng.uniform(9.0, 13.0), rng.uniform(0.1, 0.4)]
        self._temp_noise_c, self._dew_point_c, self._cloud = self._weather_raw
        # Counters start at a few hundred: float32 registers keep ~7 significant digits.
        self.grid_import_kwh = rng.uniform(300.0, 500.0)
        self.grid_export_kwh = rng.uniform(100.0, 200.0)
        self.pv_energy_kwh = rng.uniform(300.0, 500.0)
        self.electric_energy_kwh = self.grid_import_kwh - self.grid_export_kwh + self.pv_energy_kwh
        self.solar_heat_kwh = rng.uniform(500.0, 900.0)
        self.water_evaporated_kg = 0.0
        self.batch_state = EMPTY
        self.batch_number = 0
        self.dry_matter_kg = 0.0
        self.water_kg = 0.0
        self._next_change_s = 0.0
        self.fan_speed = 0.0  # fraction of nominal
        self._load_batch()
        self._weather(0.0)
        self.barn = Barn(ambient_c=self.ambient_temp_c, heating=BARN_HEATING)
        self.fan_speed = self._fan_target()  # start in the controller's steady state
        self._air(0.0)

    # ----------------------------------------------------------------------------- physics

    def _step(self, dt_s: float) -> None:
        self._weather(dt_s)
        self._control(dt_s)
        self._air(dt_s)
        self._integrate(dt_s)
        self._batch_transitions()
        self.barn.step(elapsed_s=self.elapsed_s, ambient_c=self.ambient_temp_c, dt_s=dt_s)

    def _weather(self, dt_s: float) -> None:
        now = self.now.astimezone(SITE_TIMEZONE)
        hour = now.hour + now.minute / 60 + now.second / 3600
        if dt_s > 0:
            rng = self.rng
            raw = self._weather_raw
            raw[0] = ornstein_uhlenbeck(rng, raw[0], mean=0.0, tau_s=7200.0, sigma=0.8,
                                        dt_s=dt_s)
            raw[1] = ornstein_uhlenbeck(rng, raw[1], mean=11.0, tau_s=6 * 3600.0, sigma=1.5,
                                        dt_s=dt_s)
            raw[2] = min(1.0, max(0.0, ornstein_uhlenbeck(rng, raw[2], mean=0.3, tau_s=5400.0,
                                                          sigma=0.25, dt_s=dt_s)))
            self._temp_noise_c = relax(self._temp_noise_c, raw[0], tau_s=SMOOTHING_S, dt_s=dt_s)
            self._dew_point_c = relax(self._dew_point_c, raw[1], tau_s=SMOOTHING_S, dt_s=dt_s)
            self._cloud = relax(self._cloud, raw[2], tau_s=SMOOTHING_S, dt_s=dt_s)
        self.ambient_temp_c = 19.0 + 6.0 * math.sin(2 * math.pi * (hour - 9.0) / 24.0) \
            + self._temp_noise_c
        dew = min(self._dew_point_c, self.ambient_temp_c - 0.5)
        self.ambient_rh_pct = 100.0 * air.saturation_pressure_pa(dew) \
            / air.saturation_pressure_pa(self.ambient_temp_c)
        self.irradiance_w_m2 = sun.clear_sky_irradiance_w_m2(self.now) * (1 - 0.75 * self._cloud)

    def _fan_target(self) -> float:
        if self.batch_state != DRYING:
            return 0.0
        if self.irradiance_w_m2 >= SUN_THRESHOLD_W_M2:
            return 1.0
        if self.ambient_rh_pct < COLD_VENTILATION_RH_PCT:
            return COLD_VENTILATION_SPEED
        return 0.0

    def _control(self, dt_s: float) -> None:
        target = self._fan_target()
        self.fan_speed = relax(self.fan_speed, target, tau_s=FAN_RAMP_S, dt_s=dt_s)
        if target == 0.0 and self.fan_speed < 0.02:
            self.fan_speed = 0.0  # the drive stops below its minimum frequency

    def _air(self, dt_s: float) -> None:
        speed = self.fan_speed
        self.fan_power_w = FAN_NOMINAL_W * speed ** 3
        self.airflow_m3_h = AIRFLOW_NOMINAL_M3_H * speed
        self.collector_active = speed > 0 and self.irradiance_w_m2 > 50.0
        self.solar_heat_power_w = (self.collector_efficiency * self.irradiance_w_m2
                                   * COLLECTOR_AREA_M2 * speed) if self.collector_active else 0.0
        temp_pv_cell = self.ambient_temp_c + 0.03 * self.irradiance_w_m2
        self.pv_power_w = max(0.0, PV_PEAK_W * self.irradiance_w_m2 / 1000.0
                              * PV_PERFORMANCE_RATIO * (1 - 0.004 * (temp_pv_cell - 25.0)))
        self.grid_power_w = self.fan_power_w - self.pv_power_w
        self.evaporation_kg_s = 0.0
        x_in = air.humidity_ratio(self.ambient_temp_c, self.ambient_rh_pct)
        if speed <= 0:
            # No airflow: the duct sensors see the barn's air, close to outdoor air.
            self.inlet_air_temp_c = self.ambient_temp_c
            self.inlet_rh_pct = self.ambient_rh_pct
            self.outlet_air_temp_c = self.ambient_temp_c
            self.outlet_rh_pct = self.ambient_rh_pct
            return
        m_dot = self.airflow_m3_h / 3600.0 * air.density_kg_m3(self.ambient_temp_c)
        cp = air.CP_DRY_AIR_J_KG_K + air.CP_VAPOUR_J_KG_K * x_in
        heat_w = self.solar_heat_power_w + FAN_HEAT_SHARE * self.fan_power_w
        self.inlet_air_temp_c = self.ambient_temp_c + heat_w / (m_dot * cp)
        self.inlet_rh_pct = air.relative_humidity(self.inlet_air_temp_c, x_in)
        evaporation = 0.0
        if self.batch_state == DRYING and self.dry_matter_kg > 0:
            x_dry = self.water_kg / self.dry_matter_kg
            w_eq = equilibrium_moisture(self.inlet_rh_pct)
            x_eq = w_eq / (1 - w_eq)
            x_crit = CRITICAL_MOISTURE / (1 - CRITICAL_MOISTURE)
            efficiency = EFFICIENCY_MAX * min(1.0, max(0.0, (x_dry - x_eq) / (x_crit - x_eq)))
            t_sat = air.adiabatic_saturation_c(self.inlet_air_temp_c, x_in)
            evaporation = max(0.0, m_dot * efficiency * (air.saturation_ratio(t_sat) - x_in))
            if dt_s > 0:
                available = max(0.0, self.water_kg - x_eq * self.dry_matter_kg)
                evaporation = min(evaporation, available / dt_s)
        self.evaporation_kg_s = evaporation
        x_out = x_in + evaporation / m_dot
        self.outlet_air_temp_c = air.isenthalpic_temp_c(self.inlet_air_temp_c, x_in, x_out)
        self.outlet_rh_pct = air.relative_humidity(self.outlet_air_temp_c, x_out)
        # The transmitter in the inlet duct reads the same mass flow as a volume at the inlet
        # air's own state.
        self.airflow_m3_h = m_dot * 3600.0 * air.specific_volume_m3_kg(self.inlet_air_temp_c,
                                                                        x_in)

    def _integrate(self, dt_s: float) -> None:
        to_kwh = dt_s / 3.6e6
        self.electric_energy_kwh += self.fan_power_w * to_kwh
        self.pv_energy_kwh += self.pv_power_w * to_kwh
        self.grid_import_kwh += max(self.grid_power_w, 0.0) * to_kwh
        self.grid_export_kwh += max(-self.grid_power_w, 0.0) * to_kwh
        self.solar_heat_kwh += self.solar_heat_power_w * to_kwh
        water = self.evaporation_kg_s * dt_s
        self.water_kg -= water
        self.water_evaporated_kg += water

    def _batch_transitions(self) -> None:
        if self.batch_state == DRYING and self.moisture <= TARGET_MOISTURE:
            self.batch_state = FINISHED
            self._next_change_s = self.elapsed_s + self.rng.uniform(6, 14) * 3600
        elif self.batch_state == FINISHED and self.elapsed_s >= self._next_change_s:
            self.batch_state = EMPTY
            self.dry_matter_kg = self.water_kg = 0.0
            self._next_change_s = self.elapsed_s + self.rng.uniform(2, 20) * 3600
        elif self.batch_state == EMPTY and self.elapsed_s >= self._next_change_s:
            self._load_batch()

    def _load_batch(self) -> None:
        fresh_kg = self.rng.uniform(9000.0, 14000.0)
        moisture = self.rng.uniform(0.60, 0.65)
        self.dry_matter_kg = fresh_kg * (1 - moisture)
        self.water_kg = fresh_kg * moisture
        self.batch_state = DRYING
        self.batch_number += 1

    @property
    def moisture(self) -> float:
        """Wet-basis moisture of the hay in the cell (0 when empty)."""
        total = self.dry_matter_kg + self.water_kg
        return self.water_kg / total if total > 0 else 0.0

    # ------------------------------------------------------------------------------- truth

    def values(self) -> dict[str, float]:
        loaded = self.batch_state != EMPTY
        return {
            "grid_import_kwh": self.grid_import_kwh,
            "grid_export_kwh": self.grid_export_kwh,
            "pv_energy_kwh": self.pv_energy_kwh,
            "electric_energy_kwh": self.electric_energy_kwh,
            "solar_heat_kwh": self.solar_heat_kwh,
            "water_evaporated_kg": self.water_evaporated_kg,
            "grid_power_w": self.grid_power_w,
            "pv_power_w": self.pv_power_w,
            "fan_power_w": self.fan_power_w,
            "solar_heat_power_w": self.solar_heat_power_w,
            "irradiance_w_m2": self.irradiance_w_m2,
            "ambient_temp_c": self.ambient_temp_c,
            "ambient_rh_pct": self.ambient_rh_pct,
            "inlet_air_temp_c": self.inlet_air_temp_c,
            "inlet_rh_pct": self.inlet_rh_pct,
            "outlet_air_temp_c": self.outlet_air_temp_c,
            "outlet_rh_pct": self.outlet_rh_pct,
            "airflow_m3_h": self.airflow_m3_h,
            "fan_speed_pct": 100.0 * self.fan_speed,
            "fan_running": 1.0 if self.fan_speed > 0 else 0.0,
            "collector_active": 1.0 if self.collector_active else 0.0,
            "hay_moisture_pct": 100.0 * self.moisture,
            "batch_mass_kg": self.dry_matter_kg + self.water_kg if loaded else 0.0,
            "batch_dry_matter_kg": self.dry_matter_kg if loaded else 0.0,
            "batch_state": float(self.batch_state),
            "batch_number": float(self.batch_number),
            **self.barn.values(),
        }
