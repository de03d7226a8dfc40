"""The machine models on their own (no Modbus, no wall clock): plausible physics."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from statistics import median

import pytest

from simulators import DryerModel, FreezerModel, MachineModel, PackagingModel
from simulators.clock import SITE_TIMEZONE
from simulators.dryer import COLLECTOR_AREA_M2

pytestmark = pytest.mark.timeout(60)

JUNE_MORNING = datetime(2025, 6, 10, 7, 0, tzinfo=SITE_TIMEZONE)


def _run(model: MachineModel, *, hours: float, dt_s: float) -> Iterator[dict[str, float]]:
    """Step `model` for `hours` simulated hours, yielding the truth after each step."""
    for _ in range(round(hours * 3600 / dt_s)):
        model.step(dt_s)
        yield model.values()


def _never_decrease(samples: list[dict[str, float]], names: list[str]) -> None:
    for name in names:
        series = [s[name] for s in samples]
        assert all(b >= a for a, b in itertools.pairwise(series)), name


@pytest.mark.parametrize("seed", [1, 2])
def test_dryer_dries_a_batch_to_15_percent(seed: int) -> None:
    model = DryerModel(seed=seed, start=JUNE_MORNING)
    first = model.values()
    assert first["batch_state"] == 1
    assert 60.0 <= first["hay_moisture_pct"] <= 65.0
    fresh_kg, w_in = first["batch_mass_kg"], first["hay_moisture_pct"] / 100
    samples = list(_run(model, hours=8 * 24, dt_s=60.0))
    batch_1 = [s for s in samples if s["batch_number"] == 1 and s["batch_state"] == 1]
    moisture = [s["hay_moisture_pct"] for s in batch_1]
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(moisture))
    done = next(s for s in samples if s["batch_number"] == 1 and s["batch_state"] == 2)
    assert 14.5 <= done["hay_moisture_pct"] <= 15.0
    # Water removed, on a wet basis (dry-matter balance): m_in x (1 - (1 - w_in) / (1 - w_out)).
    w_out = done["hay_moisture_pct"] / 100
    expected_kg = fresh_kg * (1 - (1 - w_in) / (1 - w_out))
    assert done["water_evaporated_kg"] == pytest.approx(expected_kg, rel=1e-6)
    assert done["batch_mass_kg"] == pytest.approx(fresh_kg - expected_kg, rel=1e-6)
    _never_decrease(samples, ["grid_import_kwh", "grid_export_kwh", "pv_energy_kwh",
                              "electric_energy_kwh", "solar_heat_kwh", "water_evaporated_kg"])


def test_dryer_energy_and_solar_heat_are_consistent() -> None:
    model = DryerModel(seed=3, start=JUNE_MORNING)
    samples = list(_run(model, hours=48, dt_s=30.0))
    for s in samples:
        # Consumption = import - export + PV: the fans are the only load behind the meter.
        assert s["electric_energy_kwh"] == pytest.approx(
            s["grid_import_kwh"] - s["grid_export_kwh"] + s["pv_energy_kwh"], rel=1e-9)
        assert s["grid_power_w"] == pytest.approx(s["fan_power_w"] - s["pv_power_w"], abs=1e-6)
    collecting = [s for s in samples if s["collector_active"] and s["fan_speed_pct"] > 99.9]
    assert collecting, "the sun should have driven the fans"
    for s in collecting:
        share = s["solar_heat_power_w"] / (s["irradiance_w_m2"] * COLLECTOR_AREA_M2)
        assert 0.35 <= share <= 0.40 + 1e-3  # collectors: 35-40 % of irradiance as heat
        assert s["inlet_air_temp_c"] > s["ambient_temp_c"] + 1
        assert s["outlet_air_temp_c"] < s["inlet_air_temp_c"]
    nights = [s for s in samples if s["irradiance_w_m2"] == 0]
    assert nights and all(s["solar_heat_power_w"] == 0 for s in nights)
    assert max(s["irradiance_w_m2"] for s in samples) > 500


def test_dryer_is_deterministic_for_a_seed() -> None:
    a, b, c = (DryerModel(seed=s, start=JUNE_MORNING) for s in (7, 7, 8))
    for model in (a, b, c):
        for _ in range(500):
            model.step(60.0)
    assert a.values() == b.values()
    assert a.values() != c.values()


def test_freezer_core_plateaus_then_reaches_minus_18() -> None:
    model = FreezerModel(seed=1, start=JUNE_MORNING)
    dt_s = 5.0
    samples = list(_run(model, hours=30, dt_s=dt_s))
    freezing = [s for s in samples if s["batch_number"] == 1 and s["batch_state"] == 2]
    assert freezing, "the first batch should be loaded within minutes"
    core = [s["product_core_temp_c"] for s in freezing]
    plateau_s = dt_s * sum(1 for t in core if -2.3 <= t <= -1.5)
    assert plateau_s >= 3600, "latent heat should hold the core near -1.7 degC for hours"
    assert min(core) <= -18.0
    first_load = next(i for i, s in enumerate(samples) if s["batch_number"] == 1)
    reached = next(i for i, s in enumerate(samples) if s["batch_number"] == 1
                   and s["product_core_temp_c"] <= -18.0 and s["batch_state"] == 2)
    assert (reached - first_load) * dt_s <= 12 * 3600
    assert any(s["batch_number"] >= 2 for s in samples), "a freezer works batch after batch"
    _never_decrease(samples, ["electric_energy_kwh", "compressor_energy_kwh", "frozen_mass_kg"])
    running = [s for s in samples if s["compressor_running"]]
    assert all(s["condenser_pressure_bar"] > s["evaporator_pressure_bar"] for s in running)
    assert all(s["electric_power_w"] >= s["compressor_power_w"] for s in samples)
    switches = sum(1 for a, b in itertools.pairwise(samples)
                   if a["compressor_running"] != b["compressor_running"])
    assert switches >= 6, "the thermostat should cycle the compressor"
    assert any(s["door_open"] for s in samples)
    assert median(s["refrigerant_leak_ppm"] for s in samples) < 5.0


def test_freezer_events_for_alert_tests() -> None:
    model = FreezerModel(seed=2, start=JUNE_MORNING)
    model.open_door(duration_s=600)
    model.start_leak(ppm=500, duration_s=3600)
    samples = list(_run(model, hours=0.5, dt_s=5.0))
    assert samples[0]["door_open"] == 1
    assert any(s["door_open_alarm"] for s in samples)
    assert samples[-1]["refrigerant_leak_ppm"] > 400


def test_packaging_makes_units_only_while_running() -> None:
    model = PackagingModel(seed=1, start=datetime(2025, 6, 10, 5, 0, tzinfo=SITE_TIMEZONE))
    before = model.values()
    samples: list[dict[str, float]] = []
    previous = before
    for _ in range(round(26 * 3600 / 5)):
        state_at_start = model.state
        model.step(5.0)
        now = model.values()
        made = (now["units_packed"] + now["units_rejected"]
                - previous["units_packed"] - previous["units_rejected"])
        if made:
            assert state_at_start == 1, "units made while the line was not running"
        if now["line_state"] != 1:
            assert now["line_speed_upm"] == 0
        samples.append(now)
        previous = now
    _never_decrease(samples, ["units_packed", "units_rejected", "cardboard_kg", "pla_film_kg",
                              "compressed_air_m3", "electric_energy_kwh"])
    after = samples[-1]
    made = (after["units_packed"] + after["units_rejected"]
            - before["units_packed"] - before["units_rejected"])
    assert made > 10_000
    assert after["cardboard_kg"] - before["cardboard_kg"] == pytest.approx(made * 0.045)
    rejects = after["units_rejected"] - before["units_rejected"]
    assert 0.005 <= rejects / made <= 0.03
    states = [s["line_state"] for s in samples]
    assert {0.0, 1.0} <= set(states)
    night = samples[: round(3500 / 5)]  # 05:00-05:58: before the first shift
    assert all(s["line_state"] == 0 for s in night)
    running_share = states.count(1.0) / len(states)
    assert 0.3 < running_share < 0.7  # two shifts out of 24 h, less stops


def test_packaging_fault_on_demand() -> None:
    model = PackagingModel(seed=4, start=datetime(2025, 6, 10, 9, 0, tzinfo=SITE_TIMEZONE))
    model.fault(duration_s=600)
    model.step(5.0)
    assert model.values()["line_state"] == 2
    for _ in range(round(700 / 5)):
        model.step(5.0)
    assert model.values()["line_state"] in (0.0, 1.0)
