"""Energy of an equipment by source over a period: each source from its counter when it has
one, from the time integral of its power otherwise, with method, sensors and coverage.

Source table: which counter role and which power role measure each source. A net grid power
gauge (import positive) serves both import (its positive part) and export (its negative part).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from api.accounting.energy import (
    counter_delta,
    counter_wrap,
    coverage_ms,
    named_drops,
    power_integral,
)
from api.periods import Period
from api.schemas import CounterDropOut, EnergyBySourceOut, SourceEnergy
from api.sites import EquipmentInfo, SensorInfo
from api.store import CounterSeries, ReadingsStore
from telemetry.units import convert


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    counter_role: str
    power_role: str | None
    sign: int = 0  # which part of the power gauge: +1 positive, -1 negative, 0 signed


SOURCES = (
    Source("grid_import", "grid_import_energy", "grid_power", +1),
    Source("grid_export", "grid_export_energy", "grid_power", -1),
    Source("pv", "pv_energy", "pv_power", +1),
    Source("solar_heat", "solar_heat_energy", "solar_heat_power", +1),
    Source("fuel", "fuel_energy", None),
    # What the equipment itself used, metered at its own feeder.
    Source("electricity", "electric_energy", "electric_power", 0),
)


# The time-sorted good readings of a sensor around a period, their unit and a counter's
# register type.
SampleFetch = Callable[[SensorInfo], CounterSeries]


def energy_by_source(
    *, equipment: EquipmentInfo, store: ReadingsStore, period: Period, around: timedelta,
    max_gap: timedelta,
) -> EnergyBySourceOut:
    """Every source the equipment has sensors for, measured over `period` from raw readings."""

    def fetch(sensor: SensorInfo) -> CounterSeries:
        return store.counter_series(site=equipment.site, sensor=sensor.id, start=period.start,
                                    end=period.end, around=around)

    return energy_from_samples(equipment=equipment, fetch=fetch, period=period,
                               max_gap_ms=int(max_gap.total_seconds() * 1000))


def energy_from_samples(
    *, equipment: EquipmentInfo, fetch: SampleFetch, period: Period, max_gap_ms: int
) -> EnergyBySourceOut:
    """As `energy_by_source`, with readings from `fetch` (the rollup job slices a long fetch)."""
    found: list[SourceEnergy] = []
    missing: list[str] = []
    length = period.end_ms - period.start_ms
    for source in SOURCES:
        counters = equipment.with_role(source.counter_role)
        powers = equipment.with_role(source.power_role) if source.power_role else []
        if not counters and not powers:
            continue
        figure: SourceEnergy | None = None
        if counters:
            figure = _from_counters(source, counters, fetch, period, max_gap_ms, length)
        if figure is None and powers:
            figure = _from_power(source, powers, fetch, period, max_gap_ms, length)
        if figure is None:
            missing.append(source.name)
        else:
            found.append(figure)
    return EnergyBySourceOut(site=equipment.site, equipment=equipment.id, period=period.label,
                             start=period.start, end=period.end, sources=found, missing=missing)


def _from_counters(source: Source, sensors: list[SensorInfo], fetch: SampleFetch,
                   period: Period, max_gap_ms: int, length: int) -> SourceEnergy | None:
    total = 0.0
    readings = resets = rollovers = covered = 0
    largest = 0
    drops: list[CounterDropOut] = []
    for sensor in sensors:
        found = fetch(sensor)
        samples, unit = found.samples, found.unit
        result = counter_delta(samples, start_ms=period.start_ms, end_ms=period.end_ms,
                               wrap=counter_wrap(sensor, found.data_type))
        if result is None or (result.readings == 0 and not (result.start_exact
                                                           and result.end_exact)):
            return None  # a meter of the source silent: the sum would be wrong
        total += convert(result.delta, from_unit=unit or sensor.unit, to_unit="kWh")
        readings += result.readings
        resets += result.resets
        rollovers += result.rollovers
        drops += named_drops(sensor.id, result.drops)
        largest = max(largest, result.largest_gap_ms)
        covered += coverage_ms([t for t, _ in samples], start_ms=period.start_ms,
                               end_ms=period.end_ms, max_gap_ms=max_gap_ms)
    return SourceEnergy(source=source.name, energy_kwh=total, method="counter_difference",
                        sensors=[s.id for s in sensors], readings=readings, resets=resets,
                        rollovers=rollovers, drops=drops,
                        coverage=covered / len(sensors) / length, largest_gap_s=largest / 1000)


def _from_power(source: Source, sensors: list[SensorInfo], fetch: SampleFetch,
                period: Period, max_gap_ms: int, length: int) -> SourceEnergy | None:
    total = 0.0
    readings = covered = 0
    largest = 0
    for sensor in sensors:
        found = fetch(sensor)
        samples, unit = found.samples, found.unit
        result = power_integral(samples, start_ms=period.start_ms, end_ms=period.end_ms,
                                max_gap_ms=max_gap_ms, sign=source.sign)
        if result is None:
            return None
        total += convert(result.energy, from_unit=f"({unit or sensor.unit})*h", to_unit="kWh")
        readings += result.readings
        covered += result.covered_ms
        largest = max(largest, result.largest_gap_ms)
    return SourceEnergy(source=source.name, energy_kwh=total, method="power_integral",
                        sensors=[s.id for s in sensors], readings=readings, resets=0,
                        coverage=covered / len(sensors) / length, largest_gap_s=largest / 1000)
