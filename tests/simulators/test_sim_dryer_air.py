"""The dryer simulator's air and barn hold up under the api's own psychrometrics (psychrolib,
not the simulator's Magnus formulas): the water the air takes up is the water the hay loses,
the heat it carries is metered heat plus the ambient air's own, and the heating bale crosses
the hay-fire scale's levels when its curve says."""

from __future__ import annotations

from datetime import datetime

import pytest

from api.accounting import airside
from simulators import DryerModel
from simulators.air import PRESSURE_PA
from simulators.barn import HEATING_PROBE, Heating
from simulators.clock import SITE_TIMEZONE
from simulators.dryer import FAN_HEAT_SHARE

pytestmark = pytest.mark.timeout(120)

JUNE_MORNING = datetime(2025, 6, 10, 7, 0, tzinfo=SITE_TIMEZONE)
STEP_S = 60.0


def _batch(seed: int) -> tuple[dict[str, list[tuple[int, float]]], dict[str, float]]:
    """The five air sensors' samples over the first batch, and the batch's own totals."""
    model = DryerModel(seed=seed, start=JUNE_MORNING)
    samples: dict[str, list[tuple[int, float]]] = {role: [] for role in airside.ROLES}
    names = dict(zip(airside.ROLES, ("inlet_air_temp_c", "inlet_rh_pct", "outlet_air_temp_c",
                                     "outlet_rh_pct", "airflow_m3_h"), strict=True))
    first = model.values()
    heat_j = ambient_j = 0.0
    t = 0
    while model.values()["batch_state"] == 1:
        v = model.values()
        for role, name in names.items():
            samples[role].append((t, v[name]))
        if v["airflow_m3_h"] > 0:
            # The ambient air's own heat given up in the hay: from outdoor to outlet
            # temperature at the air's inlet humidity ratio, held over the step like the api.
            inlet = airside.AirState.from_rh(v["inlet_air_temp_c"], v["inlet_rh_pct"],
                                             PRESSURE_PA)
            kg = v["airflow_m3_h"] / 3600 / inlet.volume_m3_per_kg(PRESSURE_PA) * STEP_S
            outdoor = airside.AirState(v["ambient_temp_c"], inlet.humidity_ratio)
            outlet = airside.AirState(v["outlet_air_temp_c"], inlet.humidity_ratio)
            ambient_j += kg * (outdoor.enthalpy_j_per_kg() - outlet.enthalpy_j_per_kg())
        model.step(STEP_S)
        t += int(STEP_S * 1000)
        # Heat put into the air stream by the meters' sources over the step just ended.
        heat_j += (model.solar_heat_power_w + FAN_HEAT_SHARE * model.fan_power_w) * STEP_S
        assert t < 10 * 86_400_000, "the batch should dry within ten days"
    last = model.values()
    totals = {"water_kg": last["water_evaporated_kg"] - first["water_evaporated_kg"],
              "mass_drop_kg": first["batch_mass_kg"] - last["batch_mass_kg"],
              "metered_air_heat_j": heat_j, "end_ms": t, "ambient_j": ambient_j}
    return samples, totals


@pytest.mark.parametrize("seed", [1, 2])
def test_the_air_takes_up_the_water_the_hay_loses(seed: int) -> None:
    samples, totals = _batch(seed)
    sums = airside.integrate(samples, start_ms=0, end_ms=int(totals["end_ms"]),
                             max_gap_ms=int(STEP_S * 1000) + 1, pressure_pa=PRESSURE_PA)
    assert totals["water_kg"] == pytest.approx(totals["mass_drop_kg"], rel=1e-6)
    # The simulator's Magnus saturation pressure differs from Hyland-Wexler's by < 0.3 %;
    # on W_out − W_in that is ≤ 2 %: the balance must close within 3 %.
    assert sums.water_kg == pytest.approx(totals["water_kg"], rel=0.03)
    # Through the bed the air pays for evaporation with its own heat (adiabatic bed): what it
    # takes up as vapour it loses as sensible heat, within 3 %.
    assert -sums.sensible_j == pytest.approx(sums.latent_j, rel=0.03)
    # That heat is the metered heat the air received (solar collectors, 90 % of the fans'
    # power) plus the ambient air's own heat given up between outdoor and outlet temperature:
    # the api's ambient share (heat taken up − metered) is that second term.
    metered = totals["metered_air_heat_j"]
    assert metered + totals["ambient_j"] == pytest.approx(sums.latent_j, rel=0.03)
    assert metered > 0


def test_the_heating_bale_crosses_the_scale_on_its_curve() -> None:
    model = DryerModel(seed=1, start=JUNE_MORNING)
    heating = model.barn.start_heating(now_s=model.elapsed_s, duration_s=3600.0)
    base = model.barn.sound_c[HEATING_PROBE]
    crossings = {c: heating.crossing_s(c, base) for c in (40.0, 60.0, 80.0)}
    assert all(v is not None for v in crossings.values())
    seen: dict[float, float] = {}
    while model.elapsed_s < 3600.0 and len(seen) < 3:
        model.step(5.0)
        probe = model.values()[f"forage_probe_{HEATING_PROBE + 1}_c"]
        for level in crossings:
            if level not in seen and probe > level:
                seen[level] = model.elapsed_s
    for level, at in crossings.items():
        assert at is not None
        assert seen[level] == pytest.approx(at, abs=10.0)  # one step, and the base's drift
    assert seen[40.0] < seen[60.0] < seen[80.0]
    others = [v for k, v in model.values().items()
              if k.startswith("forage_probe_") and k != f"forage_probe_{HEATING_PROBE + 1}_c"]
    assert len(others) >= 3 and all(v < 40.0 for v in others)


def test_a_logistic_heating_starts_at_the_bale_temperature_and_levels_at_its_peak() -> None:
    heating = Heating(start_s=100.0, duration_s=1000.0, peak_c=85.0)
    assert heating.temperature(100.0, 20.0) == pytest.approx(20.0)
    assert heating.temperature(50.0, 20.0) == 20.0
    assert heating.temperature(1100.0, 20.0) == pytest.approx(85.0, abs=0.5)
    # Halfway (x = 0.5) the logistic is at half its rise: 20 + 65 × (0.5 − s) / (1 − s),
    # s = 1 / (1 + e^5) = 0.0066929: (0.5 − 0.0066929) / 0.9933071 = 0.4966310
    # → 20 + 65 × 0.4966310 = 52.2810
    assert heating.temperature(600.0, 20.0) == pytest.approx(52.2810, abs=1e-3)
