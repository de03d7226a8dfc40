"""The air-side sums on their own: which intervals count (readings held, gaps, fans off).

The moist-air numbers are those worked out by hand in
tests/api/cases/indicators/dryer-air-side-balance/case.yaml (25 °C / 60 % in, 32 °C / 85 % out,
101 325 Pa): v_in = 0.86077836 m³/kg dry air, W_out − W_in = 0.013964411 kg/kg,
h(32, W_out) − h(32, W_in) = 98.405664 − 62.649510 = 35.756154 kJ/kg dry air.
"""

from __future__ import annotations

import pytest

from api.accounting.airside import ROLES, integrate


def test_held_readings_gaps_and_stopped_fans() -> None:
    air = {"inlet_air_temp": 25.0, "inlet_air_humidity": 60.0, "outlet_air_temp": 32.0,
           "outlet_air_humidity": 85.0}
    samples = {role: [(t, value) for t in range(0, 1_200_001, 60_000)]
               for role, value in air.items()}
    # Fans at 3600 m³/h (1 m³/s) from 120 s, stopped at 600 s, again from 660 s; the airflow
    # transmitter then says nothing until 1200 s.
    samples["airflow"] = [(120_000, 3600.0), (600_000, 0.0), (660_000, 3600.0),
                          (1_200_000, 3600.0)]
    assert set(samples) == set(ROLES)
    sums = integrate(samples, start_ms=0, end_ms=1_200_000, max_gap_ms=300_000)
    # Every interval is 60 s (the air readings). Counted: a held airflow no older than 300 s:
    # 120…480 s (6 intervals, flowing), 600…660 s (fans off: covered, no air), 660…960 s
    # (6 intervals, flowing); not 0…120 s (no airflow yet), 480…600 s and 960…1200 s (the
    # airflow reading is over 300 s old).
    assert sums.covered_s == 780.0
    # 720 s × 1 m³/s = 720 m³ / 0.86077836 = 836.4523 kg of dry air
    assert sums.dry_air_kg == pytest.approx(836.4523, rel=1e-6)
    # × 0.013964411 = 11.680563 kg of water; × 35.756154 kJ/kg = 29 908.3 kJ
    assert sums.water_kg == pytest.approx(11.680563, rel=1e-6)
    assert sums.latent_j == pytest.approx(29_908_316, rel=1e-6)
    assert sums.mean_inlet_ratio == pytest.approx(0.011895049, rel=1e-6)


def test_no_airflow_at_all_gives_nothing() -> None:
    samples = {role: [(0, 20.0), (60_000, 20.0)] for role in ROLES if role != "airflow"}
    sums = integrate(samples, start_ms=0, end_ms=60_000, max_gap_ms=300_000)
    assert (sums.covered_s, sums.dry_air_kg, sums.water_kg) == (0.0, 0.0, 0.0)
    assert sums.mean_inlet_ratio is None
