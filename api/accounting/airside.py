"""The dryer's air-side balance: what the drying air took up, against what the meters saw.

A barn dryer evaporates water with air. The air's humidity ratio rises from W_in to W_out
through the hay; the heat that evaporation needed left with the air as the latent heat of that
vapour. The meters see only part of that heat (solar collectors, fans, fuel): the rest is the
ambient air's own sensible heat (outdoor air above its wet-bulb temperature dries hay with no
heating at all), which nothing meters. This module measures the air side with psychrometrics
(psychrolib, ASHRAE Handbook Fundamentals 2017 ch. 1, SI units;
docs/sources.md#ashrae-psychrometrics):

- dry-air mass flow = volumetric airflow / v(T_in, W_in, p), the moist air's specific volume
  per kg of dry air at the inlet, where the airflow is measured;
- water taken up by the air = Σ ṁ_da (W_out − W_in) Δt, to compare with the water evaporated
  from the batches (their mass and moistures);
- heat taken up by the air (as vapour) = Σ ṁ_da (h(T_out, W_out) − h(T_out, W_in)) Δt, the
  latent part of the moist-air enthalpy rise;
- sensible heat = Σ ṁ_da (h(T_out, W_in) − h(T_in, W_in)) Δt, negative when the hay cooled
  the air (the usual case: the air pays for evaporation with its own heat);
- ambient share = heat taken up − metered heat: what neither the meters nor any record saw.

Readings are held from one sample to the next (zero-order hold) on the union of the five
sensors' timestamps; an interval longer than `max_gap`, or where a sensor has no reading yet,
is not counted, and the covered time is reported.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass

import psychrolib

psychrolib.SetUnitSystem(psychrolib.SI)

STANDARD_PRESSURE_PA = 101_325.0
#: The five inputs, by role, in the order `integrate` takes their samples.
ROLES = ("inlet_air_temp", "inlet_air_humidity", "outlet_air_temp", "outlet_air_humidity",
         "airflow")

Samples = list[tuple[int, float]]  # (ms, value), time-sorted


@dataclass(frozen=True, slots=True)
class AirState:
    """Moist air at one point of the duct, from its dry-bulb temperature and RH."""

    temp_c: float
    humidity_ratio: float  # kg water / kg dry air

    @classmethod
    def from_rh(cls, temp_c: float, rh_pct: float, pressure_pa: float) -> AirState:
        rh = min(max(rh_pct, 0.0), 100.0) / 100.0
        return cls(temp_c, psychrolib.GetHumRatioFromRelHum(temp_c, rh, pressure_pa))

    def enthalpy_j_per_kg(self, humidity_ratio: float | None = None) -> float:
        """Moist-air enthalpy per kg of dry air (ASHRAE 2017 ch. 1 eq. 30), optionally with
        another humidity ratio at this temperature."""
        w = self.humidity_ratio if humidity_ratio is None else humidity_ratio
        return float(psychrolib.GetMoistAirEnthalpy(self.temp_c, w))

    def volume_m3_per_kg(self, pressure_pa: float) -> float:
        """Moist air's volume per kg of dry air (eq. 26)."""
        return float(psychrolib.GetMoistAirVolume(self.temp_c, self.humidity_ratio,
                                                  pressure_pa))


@dataclass(frozen=True, slots=True)
class AirBalance:
    """Sums over the covered time; energies in J, masses in kg."""

    covered_s: float
    dry_air_kg: float
    water_kg: float
    latent_j: float
    sensible_j: float
    mean_inlet_ratio: float | None
    mean_outlet_ratio: float | None


def _value_at(samples: Samples, times: list[int], at_ms: int) -> tuple[int, float] | None:
    """The latest sample at or before `at_ms`."""
    i = bisect.bisect_right(times, at_ms) - 1
    return samples[i] if i >= 0 else None


def integrate(samples: dict[str, Samples], *, start_ms: int, end_ms: int, max_gap_ms: int,
              pressure_pa: float = STANDARD_PRESSURE_PA) -> AirBalance:
    """The air-side sums over `[start_ms, end_ms)`; `samples` by role (`ROLES`)."""
    series = [samples.get(role, []) for role in ROLES]
    times = [[t for t, _ in s] for s in series]
    cuts = sorted({t for s in times for t in s if start_ms < t < end_ms} | {start_ms, end_ms})
    covered = dry = water = latent = sensible = w_in_sum = w_out_sum = 0.0
    for a, b in itertools.pairwise(cuts):
        held = [_value_at(s, ts, a) for s, ts in zip(series, times, strict=True)]
        if any(h is None or a - h[0] > max_gap_ms or b - a > max_gap_ms for h in held):
            continue
        t_in, rh_in, t_out, rh_out, flow_m3_h = (h[1] for h in held if h is not None)
        inlet = AirState.from_rh(t_in, rh_in, pressure_pa)
        outlet = AirState.from_rh(t_out, rh_out, pressure_pa)
        seconds = (b - a) / 1000
        covered += seconds
        if flow_m3_h <= 0:
            continue  # fans stopped: no air through the hay
        mass = flow_m3_h / 3600 / inlet.volume_m3_per_kg(pressure_pa) * seconds
        dry += mass
        water += mass * (outlet.humidity_ratio - inlet.humidity_ratio)
        latent += mass * (outlet.enthalpy_j_per_kg() - outlet.enthalpy_j_per_kg(
            inlet.humidity_ratio))
        sensible += mass * (outlet.enthalpy_j_per_kg(inlet.humidity_ratio)
                            - inlet.enthalpy_j_per_kg())
        w_in_sum += mass * inlet.humidity_ratio
        w_out_sum += mass * outlet.humidity_ratio
    return AirBalance(covered_s=covered, dry_air_kg=dry, water_kg=water, latent_j=latent,
                      sensible_j=sensible,
                      mean_inlet_ratio=w_in_sum / dry if dry else None,
                      mean_outlet_ratio=w_out_sum / dry if dry else None)
