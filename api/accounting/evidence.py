"""Where the indicators' measurements come from: raw readings (periods up to 31 days) or the
hourly rollups (longer periods: long horizons never scan raw data).

Both answer the same three questions, so the indicators do not care which one they ask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from api.accounting.energy import counter_delta, counter_wrap
from api.accounting.references import band_label
from api.accounting.sources import SOURCES, energy_by_source
from api.accounting.states import TimeShare, time_where
from api.periods import Period
from api.schemas import EnergyBySourceOut, SourceEnergy
from api.sites import EquipmentInfo, SensorInfo
from api.store import ReadingsStore
from telemetry.roles import Kind

# Periods longer than this are computed from rollups only.
RAW_LIMIT = timedelta(days=31, hours=1)


def evidence_for(store: ReadingsStore, period: Period, *, around: timedelta,
                 max_gap: timedelta) -> Evidence:
    """Raw readings up to `RAW_LIMIT`, the hourly rollups beyond."""
    if period.duration > RAW_LIMIT:
        return RollupEvidence(store=store)
    return RawEvidence(store=store, around=around, max_gap=max_gap)


class Evidence(Protocol):
    @property
    def name(self) -> str: ...

    def energy(self, equipment: EquipmentInfo, period: Period) -> EnergyBySourceOut: ...

    def increase(self, equipment: EquipmentInfo, sensor: SensorInfo,
                 period: Period) -> tuple[float, str] | None:
        """A counter's increase over the period, in the returned unit."""

    def time_where(self, equipment: EquipmentInfo, sensor: SensorInfo, period: Period,
                   predicate: Callable[[float], bool]) -> TimeShare | None:
        """How long the sensor's held value satisfied `predicate`; None when unknowable."""

    def time_in_band(self, equipment: EquipmentInfo, sensor: SensorInfo, period: Period,
                     low: float, high: float) -> TimeShare | None:
        """How long a gauge's held value stayed within `[low, high]`; None when unknowable."""


@dataclass(frozen=True, slots=True)
class RawEvidence:
    store: ReadingsStore
    around: timedelta
    max_gap: timedelta
    name: str = "raw readings"

    def energy(self, equipment: EquipmentInfo, period: Period) -> EnergyBySourceOut:
        return energy_by_source(equipment=equipment, store=self.store, period=period,
                                around=self.around, max_gap=self.max_gap)

    def increase(self, equipment: EquipmentInfo, sensor: SensorInfo,
                 period: Period) -> tuple[float, str] | None:
        found = self.store.counter_series(site=equipment.site, sensor=sensor.id,
                                          start=period.start, end=period.end, around=self.around)
        delta = counter_delta(found.samples, start_ms=period.start_ms, end_ms=period.end_ms,
                              wrap=counter_wrap(sensor, found.data_type))
        return None if delta is None else (delta.delta, found.unit or sensor.unit)

    def time_where(self, equipment: EquipmentInfo, sensor: SensorInfo, period: Period,
                   predicate: Callable[[float], bool]) -> TimeShare | None:
        samples, _ = self.store.counter_samples(site=equipment.site, sensor=sensor.id,
                                                start=period.start, end=period.end,
                                                around=self.around)
        return time_where(samples, start_ms=period.start_ms, end_ms=period.end_ms,
                          max_gap_ms=int(self.max_gap.total_seconds() * 1000),
                          predicate=predicate)

    def time_in_band(self, equipment: EquipmentInfo, sensor: SensorInfo, period: Period,
                     low: float, high: float) -> TimeShare | None:
        return self.time_where(equipment, sensor, period, lambda v: low <= v <= high)


@dataclass(frozen=True, slots=True)
class RollupEvidence:
    store: ReadingsStore
    name: str = "hourly rollups"

    def energy(self, equipment: EquipmentInfo, period: Period) -> EnergyBySourceOut:
        rows = self.store.energy_rollup(site=equipment.site, equipment=equipment.id,
                                        start=period.start, end=period.end)
        hours = (period.end_ms - period.start_ms) / 3_600_000
        found: list[SourceEnergy] = []
        missing: list[str] = []
        for source in SOURCES:
            sensors = equipment.with_role(source.counter_role) + (
                equipment.with_role(source.power_role) if source.power_role else [])
            if not sensors:
                continue
            row = rows.get(source.name)
            if row is None:
                missing.append(source.name)
                continue
            found.append(SourceEnergy(
                source=source.name, energy_kwh=row.energy_kwh, method=row.method,
                sensors=[s.id for s in sensors], readings=row.readings, resets=row.resets,
                rollovers=row.rollovers, coverage=row.covered_hours / hours,
                largest_gap_s=None))
        return EnergyBySourceOut(site=equipment.site, equipment=equipment.id,
                                 period=period.label, start=period.start, end=period.end,
                                 sources=found, missing=missing, evidence="hourly rollups")

    def increase(self, equipment: EquipmentInfo, sensor: SensorInfo,
                 period: Period) -> tuple[float, str] | None:
        value = self.store.increase_rollup(site=equipment.site, sensor=sensor.id,
                                           start=period.start, end=period.end)
        return None if value is None else (value, sensor.unit)

    def time_where(self, equipment: EquipmentInfo, sensor: SensorInfo, period: Period,
                   predicate: Callable[[float], bool]) -> TimeShare | None:
        if sensor.role.kind is not Kind.STATE:
            return None  # gauges' time in a band needs raw readings
        seconds = self.store.state_rollup(site=equipment.site, sensor=sensor.id,
                                          start=period.start, end=period.end)
        if not seconds:
            return None
        matching = sum(s for state, s in seconds.items() if predicate(state))
        return TimeShare(matching_ms=round(matching * 1000),
                         known_ms=round(sum(seconds.values()) * 1000))

    def time_in_band(self, equipment: EquipmentInfo, sensor: SensorInfo, period: Period,
                     low: float, high: float) -> TimeShare | None:
        # Exact to the millisecond as long as the rollups were computed against this very
        # band: the hourly split keeps the raw holding rule (api.accounting.states.time_in_band).
        found = self.store.band_rollup(site=equipment.site, sensor=sensor.id,
                                       start=period.start, end=period.end)
        seconds = found.get(band_label(low, high))
        if seconds is None:
            return None
        below, within, above = seconds
        return TimeShare(matching_ms=round(within * 1000),
                         known_ms=round((below + within + above) * 1000))
