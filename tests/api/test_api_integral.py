"""Energy from power readings: trapezoids, holes not bridged, import and export apart."""

from __future__ import annotations

import pytest

from api.accounting.energy import coverage_ms, power_integral
from api.accounting.states import first_at_or_below, time_where

MIN = 60_000


def test_constant_power_with_interpolated_ends() -> None:
    samples = [(t * MIN, 1000.0) for t in range(0, 11)]  # 1 kW for 10 min
    result = power_integral(samples, start_ms=MIN // 2, end_ms=9 * MIN + MIN // 2,
                            max_gap_ms=2 * MIN)
    assert result is not None
    assert result.energy == pytest.approx(1000 * 9 / 60)  # W·h over 9 minutes
    assert result.covered_ms == 9 * MIN


def test_a_hole_longer_than_the_gap_limit_is_not_bridged() -> None:
    samples = [(0, 600.0), (MIN, 600.0), (10 * MIN, 600.0), (11 * MIN, 600.0)]
    result = power_integral(samples, start_ms=0, end_ms=11 * MIN, max_gap_ms=2 * MIN)
    assert result is not None
    assert result.energy == pytest.approx(600 * 2 / 60)
    assert (result.covered_ms, result.largest_gap_ms) == (2 * MIN, 9 * MIN)


def test_net_grid_power_splits_into_import_and_export_at_the_zero_crossing() -> None:
    samples = [(0, 1000.0), (MIN, -1000.0)]  # crosses zero at 30 s
    imported = power_integral(samples, start_ms=0, end_ms=MIN, max_gap_ms=MIN, sign=+1)
    exported = power_integral(samples, start_ms=0, end_ms=MIN, max_gap_ms=MIN, sign=-1)
    assert imported is not None and exported is not None
    assert imported.energy == pytest.approx(1000 / 2 * 30 / 3600)
    assert exported.energy == pytest.approx(imported.energy)


def test_no_samples_no_figure() -> None:
    assert power_integral([], start_ms=0, end_ms=MIN, max_gap_ms=MIN) is None
    assert coverage_ms([], start_ms=0, end_ms=MIN, max_gap_ms=MIN) == 0


def test_time_in_state_and_threshold_crossing() -> None:
    door = [(0, 0.0), (MIN, 1.0), (3 * MIN, 0.0), (4 * MIN, 0.0)]
    share = time_where(door, start_ms=0, end_ms=4 * MIN, max_gap_ms=5 * MIN,
                       predicate=lambda v: v >= 0.5)
    assert (share.matching_ms, share.known_ms) == (2 * MIN, 4 * MIN)
    core = [(0, 5.0), (10 * MIN, -10.0), (20 * MIN, -20.0), (30 * MIN, -25.0)]
    assert first_at_or_below(core, start_ms=0, end_ms=40 * MIN, threshold=-18) == 18 * MIN
    assert first_at_or_below(core, start_ms=0, end_ms=15 * MIN, threshold=-18) is None
