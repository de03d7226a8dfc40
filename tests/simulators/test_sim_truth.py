"""Ground truth and the wall clock: samples, interpolation, windows, a simulation's steps."""

from __future__ import annotations

from datetime import datetime

import pytest

from simulators import PackagingModel, SimClock, Simulation, Truth
from simulators.clock import SITE_TIMEZONE

pytestmark = pytest.mark.timeout(30)

T0 = datetime(2025, 6, 10, 9, 0, tzinfo=SITE_TIMEZONE)


def test_value_at_interpolates_and_window_brackets() -> None:
    truth = Truth(["x"])
    truth.record(1000, T0, {"x": 10.0})
    truth.record(2000, T0, {"x": 20.0})
    truth.record(3000, T0, {"x": 0.0})
    assert truth.value_at("x", 1500) == pytest.approx(15.0)
    assert truth.value_at("x", 2000) == 20.0
    assert truth.value_at("x", 9000) == 0.0  # after the newest: what is still served
    with pytest.raises(LookupError):
        truth.value_at("x", 999)
    assert truth.window("x", 1500, 2500) == (pytest.approx(10.0), 20.0)
    assert truth.latest().wall_ms == 3000
    assert truth.series("x")[0] == (1000, 10.0)
    with pytest.raises(KeyError, match="unknown truth variable"):
        truth.value_at("y", 1500)


def test_truth_keeps_time_order_and_bounded_memory() -> None:
    truth = Truth(["x"], max_samples=10)
    for i in range(25):
        truth.record(i, T0, {"x": float(i)})
    assert len(truth) <= 10
    assert truth.span_ms()[1] == 24
    truth.record(24, T0, {"x": 99.0})  # same millisecond: replaces
    assert truth.latest().values["x"] == 99.0
    with pytest.raises(ValueError):
        truth.record(3, T0, {"x": 0.0})


def test_simulation_follows_a_fake_wall_clock() -> None:
    wall = [1_700_000_000.0]
    clock = SimClock(speed=60.0, wall=lambda: wall[0])
    simulation = Simulation(PackagingModel(seed=1, start=T0), clock=clock, max_step_s=5.0)
    assert len(simulation.truth) == 1
    for _ in range(10):
        wall[0] += 1.0  # one wall second = one simulated minute
        simulation.advance()
    assert simulation.model.elapsed_s == pytest.approx(600.0)
    assert simulation.model.now == datetime(2025, 6, 10, 9, 10, tzinfo=SITE_TIMEZONE)
    first_ms, last_ms = simulation.truth.span_ms()
    assert last_ms - first_ms == 10_000
    series = simulation.truth.series("units_packed")
    # Intermediate physics steps (5 simulated s = 83 ms here) are sampled too.
    assert len(series) > 100
    times = [t for t, _ in series]
    packed = [v for _, v in series]
    assert times == sorted(set(times))
    assert packed == sorted(packed) and packed[-1] > packed[0]
    (t0, v0), (t1, v1) = series[40], series[41]
    assert v0 <= simulation.truth.value_at("units_packed", (t0 + t1) / 2) <= v1
    wall[0] -= 5.0  # the wall clock steps back: the truth's time base does not
    simulation.advance()
    assert simulation.truth.span_ms()[1] == last_ms


def test_clock_refuses_a_bad_speed() -> None:
    with pytest.raises(ValueError):
        SimClock(speed=0)
