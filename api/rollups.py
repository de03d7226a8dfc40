"""Hourly rollups: energy per equipment and source, statistics and counter increases per
sensor, time per state — written back to InfluxDB as their own measurements so that long
periods never scan raw readings (DESIGN §3.3; docs/influxdb-schema.md).

A run recomputes every hour of its range from raw readings and overwrites the points (same
measurement, tags and hour): late data corrects the rollups at the next run, and running
twice changes nothing.
"""

from __future__ import annotations

import bisect
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from api.energy import counter_delta
from api.periods import Period
from api.references import References, band_label
from api.sites import EquipmentInfo, SensorInfo, SiteRegistry
from api.sources import SOURCES, energy_from_samples
from api.states import time_in_band, time_per_value
from api.store import ReadingsStore
from telemetry.influx.client import InfluxError
from telemetry.influx.lineprotocol import line
from telemetry.influx.schema import BAND_HOURLY, ENERGY_HOURLY, SENSOR_HOURLY, STATE_HOURLY
from telemetry.roles import Kind

log = logging.getLogger(__name__)
HOUR = timedelta(hours=1)
_HOUR_MS = 3_600_000
# Only the api writes and reads it (docs/influxdb-schema.md); ReadingsStore.band_rollup spells
# the same name. Tags: site, equipment, sensor, band; fields below_s, within_s, above_s.


@dataclass(frozen=True, slots=True)
class RollupReport:
    start: datetime
    end: datetime
    hours: int
    points: int


def hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _energy_sensors(eq: EquipmentInfo) -> list[SensorInfo]:
    roles = {s.counter_role for s in SOURCES} | {s.power_role for s in SOURCES if s.power_role}
    return [s for s in eq.sensors if s.role.name in roles]


class _Samples:
    """One fetch per sensor over the whole range; each hour takes its slice by bisection."""

    def __init__(self, store: ReadingsStore, eq: EquipmentInfo, start: datetime, end: datetime,
                 around: timedelta) -> None:
        self._data: dict[str, tuple[list[int], list[tuple[int, float]], str]] = {}
        self._store, self._eq, self._start, self._end, self._around = (
            store, eq, start, end, around)

    def __call__(self, sensor: SensorInfo, hour_ms: int) -> tuple[list[tuple[int, float]], str]:
        if sensor.id not in self._data:
            samples, unit = self._store.counter_samples(
                site=self._eq.site, sensor=sensor.id, start=self._start, end=self._end,
                around=self._around)
            self._data[sensor.id] = ([t for t, _ in samples], samples, unit)
        times, samples, unit = self._data[sensor.id]
        lo = max(bisect.bisect_right(times, hour_ms) - 1, 0)
        hi = bisect.bisect_left(times, hour_ms + _HOUR_MS)
        return samples[lo:hi + 1], unit


def rollup_equipment(*, eq: EquipmentInfo, store: ReadingsStore, start: datetime,
                     end: datetime, around: timedelta, max_gap: timedelta,
                     bands: dict[str, tuple[float, float]] | None = None) -> int:
    """Recompute and write the rollups of one equipment for the hours of `[start, end)`;
    `bands` (role → (low, high) °C, default `References.bands()`) are the bands whose time
    below/within/above is kept."""
    bands = References.load().bands() if bands is None else bands
    first, last = hour_floor(start), hour_floor(end - timedelta(microseconds=1)) + HOUR
    samples = _Samples(store, eq, first, last, around)
    max_gap_ms = int(max_gap.total_seconds() * 1000)
    tags = {"site": eq.site, "equipment": eq.id}
    lines: list[str] = []
    sensor_fields: dict[tuple[str, int], dict[str, float | str]] = {}
    roles = {s.id: s.role.name for s in eq.sensors}
    energy_sensors = _energy_sensors(eq)
    hour = first
    while hour < last:
        hour_ms = int(hour.timestamp() * 1000)
        period = Period(start=hour, end=hour + HOUR, label=hour.isoformat())
        if energy_sensors:

            def fetch(sensor: SensorInfo, at: int = hour_ms) -> tuple[list[tuple[int, float]],
                                                                      str]:
                return samples(sensor, at)

            energy = energy_from_samples(equipment=eq, fetch=fetch, period=period,
                                         max_gap_ms=max_gap_ms)
            for figure in energy.sources:
                lines.append(line(ENERGY_HOURLY, {**tags, "source": figure.source}, {
                    "energy_kwh": float(figure.energy_kwh), "method": figure.method,
                    "coverage": float(figure.coverage), "readings": float(figure.readings),
                    "resets": float(figure.resets)}, hour_ms))
        for sensor in eq.sensors:
            if sensor.role.kind is Kind.COUNTER:
                window, _ = samples(sensor, hour_ms)
                delta = counter_delta(window, start_ms=hour_ms, end_ms=hour_ms + _HOUR_MS)
                known = delta is not None and (delta.readings > 0
                                               or (delta.start_exact and delta.end_exact))
                if delta is not None and known:
                    sensor_fields.setdefault((sensor.id, hour_ms), {})["increase"] = delta.delta
            elif sensor.role.kind is Kind.STATE:
                window, _ = samples(sensor, hour_ms)
                spent = time_per_value(window, start_ms=hour_ms, end_ms=hour_ms + _HOUR_MS,
                                       max_gap_ms=max_gap_ms)
                for state, ms in spent.items():
                    lines.append(line(STATE_HOURLY, {**tags, "sensor": sensor.id,
                                                     "state": f"{state:g}"},
                                      {"seconds": ms / 1000}, hour_ms))
            if sensor.role.name in bands:
                low, high = bands[sensor.role.name]
                window, _ = samples(sensor, hour_ms)
                held = time_in_band(window, start_ms=hour_ms, end_ms=hour_ms + _HOUR_MS,
                                    max_gap_ms=max_gap_ms, low=low, high=high)
                if held.known_ms:
                    lines.append(line(BAND_HOURLY, {**tags, "sensor": sensor.id,
                                                    "band": band_label(low, high)},
                                      {"below_s": held.below_ms / 1000,
                                       "within_s": held.within_ms / 1000,
                                       "above_s": held.above_ms / 1000}, hour_ms))
        hour += HOUR
    for sensor_id, hour_ms, stats in store.hourly_stats(site=eq.site, equipment=eq.id,
                                                       start=first, end=last):
        sensor_fields.setdefault((sensor_id, hour_ms), {}).update(stats)
    for (sensor_id, hour_ms), fields in sensor_fields.items():
        lines.append(line(SENSOR_HOURLY, {**tags, "sensor": sensor_id,
                                          "role": roles.get(sensor_id, "")}, fields, hour_ms))
    store.write(lines)
    return len(lines)


def run_rollups(*, registry: SiteRegistry, store: ReadingsStore, start: datetime,
                end: datetime, around: timedelta, max_gap: timedelta,
                chunk: timedelta = timedelta(days=1),
                bands: dict[str, tuple[float, float]] | None = None) -> RollupReport:
    """Rollups of every equipment for the hours of `[start, end)`, a `chunk` at a time (a
    year of 10-s readings is never held in memory at once)."""
    bands = References.load().bands() if bands is None else bands
    points = 0
    first, last = hour_floor(start), hour_floor(end - timedelta(microseconds=1)) + HOUR
    for eq in registry.equipment.values():
        piece = first
        while piece < last:
            points += rollup_equipment(eq=eq, store=store, start=piece,
                                       end=min(piece + chunk, last), around=around,
                                       max_gap=max_gap, bands=bands)
            piece += chunk
    return RollupReport(start=first, end=last, hours=int((last - first) / HOUR), points=points)


class RollupScheduler:
    """Inside the api process: every `interval`, recompute the last `lookback` hours."""

    def __init__(self, *, registry: SiteRegistry, store: ReadingsStore, interval: timedelta,
                 lookback: timedelta, around: timedelta, max_gap: timedelta) -> None:
        self._args = (registry, store, lookback, around, max_gap)
        self._interval = interval.total_seconds()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rollups", daemon=True)
        self.last_report: RollupReport | None = None
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        registry, store, lookback, around, max_gap = self._args
        while not self._stop.is_set():
            now = datetime.now(UTC)
            try:
                self.last_report = run_rollups(registry=registry, store=store,
                                               start=now - lookback, end=now, around=around,
                                               max_gap=max_gap)
                self.last_error = None
            except InfluxError as exc:
                # InfluxDB down: the next run recomputes the same hours; nothing is lost.
                self.last_error = str(exc)
                log.warning("rollups failed, retrying in %.0f s: %s", self._interval, exc)
            except Exception as exc:  # a bad series must not stop every later run
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("rollups failed, retrying in %.0f s", self._interval)
            self._stop.wait(self._interval)
