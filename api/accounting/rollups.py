"""Hourly rollups: energy per equipment and source, statistics and counter increases per
sensor, time per state, emissions per scope and activity — written back to InfluxDB as their
own measurements so that long periods never scan raw readings (a design rule;
docs/influxdb-schema.md).

A run recomputes every hour of its range from raw readings and overwrites the points (same
measurement, tags and hour): late data corrects the rollups at the next run, and running
twice changes nothing.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from api.accounting.energy import counter_delta, counter_wrap
from api.accounting.evidence import evidence_for
from api.accounting.factors import FactorTable, UnknownFactor
from api.accounting.ghg import (
    emission_line,
    factor_spans,
    purchased_electricity,
    refrigerant_emission,
)
from api.accounting.gwp import GwpTable
from api.accounting.indicators import Inputs, batch_period, compute
from api.accounting.references import References, band_label
from api.accounting.sources import SOURCES, energy_from_samples
from api.accounting.states import time_in_band, time_per_value
from api.periods import Period
from api.records.live import live
from api.records.tables import Baseline, Batch, RefrigerantTopUp
from api.sites import EquipmentInfo, SensorInfo, SiteRegistry
from api.store import CounterSeries, ReadingsStore
from telemetry.influx.client import InfluxError
from telemetry.influx.lineprotocol import line
from telemetry.influx.schema import (
    AVOIDED_BATCHES,
    BAND_HOURLY,
    ENERGY_HOURLY,
    GHG_HOURLY,
    SENSOR_HOURLY,
    STATE_HOURLY,
)
from telemetry.roles import Kind
from telemetry.units import convert

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


@dataclass(frozen=True, slots=True)
class TopUp:
    """A refrigerant top-up record, as the emissions rollup reads it."""

    at: datetime
    refrigerant: str
    mass_kg: float


TopUpReader = Callable[[str, str, datetime, datetime], Sequence[TopUp]]


def _no_top_ups(site: str, equipment: str, start: datetime, end: datetime) -> Sequence[TopUp]:
    return ()


def top_ups_from(sessions: sessionmaker[Session]) -> TopUpReader:
    """Top-ups of an equipment in `[start, end)` from the api's relational database."""

    def read(site: str, equipment: str, start: datetime, end: datetime) -> Sequence[TopUp]:
        with sessions() as db:
            rows = db.scalars(live(RefrigerantTopUp).filter_by(site=site, equipment=equipment)
                              .where(RefrigerantTopUp.at >= start, RefrigerantTopUp.at < end))
            return [TopUp(at=r.at, refrigerant=r.refrigerant, mass_kg=r.mass_kg) for r in rows]

    return read


@dataclass(frozen=True, slots=True)
class EmissionInputs:
    """What the `ghg_hourly` rollup multiplies activities by: the factor and GWP tables the
    indicators use, the GWP report in force, and where refrigerant top-ups are recorded;
    `records` (the api's relational database: batches, baselines), when given, also yields
    the `avoided_batches` points, with `references` (default `References.load()`)."""

    factors: FactorTable = field(default_factory=FactorTable.load)
    gwp: GwpTable = field(default_factory=GwpTable.load)
    gwp_report: str = "AR5"
    top_ups: TopUpReader = _no_top_ups
    records: sessionmaker[Session] | None = None
    references: References | None = None


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
        self._types: dict[str, str | None] = {}  # a counter's register type, as stored
        self._store, self._eq, self._start, self._end, self._around = (
            store, eq, start, end, around)

    def __call__(self, sensor: SensorInfo, hour_ms: int) -> tuple[list[tuple[int, float]], str]:
        if sensor.id not in self._data:
            found = self._store.counter_series(
                site=self._eq.site, sensor=sensor.id, start=self._start, end=self._end,
                around=self._around)
            samples, unit = found.samples, found.unit
            self._data[sensor.id] = ([t for t, _ in samples], samples, unit)
            self._types[sensor.id] = found.data_type
        times, samples, unit = self._data[sensor.id]
        lo = max(bisect.bisect_right(times, hour_ms) - 1, 0)
        hi = bisect.bisect_left(times, hour_ms + _HOUR_MS)
        return samples[lo:hi + 1], unit

    def typed(self, sensor: SensorInfo, hour_ms: int) -> CounterSeries:
        """The hour's slice with the counter's register type."""
        samples, unit = self(sensor, hour_ms)
        return CounterSeries(samples, unit, self._types.get(sensor.id))


def _emission_points(emissions: EmissionInputs, eq: EquipmentInfo, hour: datetime,
                     kwh: dict[str, float], fuel_volume: list[tuple[float, str]],
                     missing: set[str]) -> list[str]:
    """The hour's emissions by the indicators' own rules (api/accounting/ghg.py): purchased
    electricity, fuel by energy and by volume, each part (combustion or generation: scope 1
    or 2 location-based; upstream: scope 3) times the version of its carrier's default factor
    valid at that hour. The upstream part's activity tag is `<activity>_upstream`, so that
    the series of the scope 1 and 2 points keep the tags they always had. Market-based scope 2
    (contracts) and biogenic CO2 (outside the scopes) are not in this rollup."""
    hour_ms = int(hour.timestamp() * 1000)
    period = Period(start=hour, end=hour + HOUR, label=hour.isoformat())
    # activity tag, carrier, meter, quantity, unit
    activities: list[tuple[str, str, str, float, str]] = []
    purchased = purchased_electricity(kwh)
    if purchased is not None:
        activities.append(("electricity", "electricity", purchased[0], purchased[2], "kWh"))
    if "fuel" in kwh:
        activities.append(("fuel_energy", _carrier(eq, "fuel_energy"), "fuel_energy",
                           kwh["fuel"], "kWh"))
    if fuel_volume:
        # Several volume meters: one point, their volumes in litres summed.
        volume = sum(convert(q, from_unit=u, to_unit="L") for q, u in fuel_volume)
        activities.append(("fuel_volume", _carrier(eq, "fuel_volume"), "fuel_volume", volume,
                           "L"))
    out: list[str] = []
    for tag, carrier, meter, quantity, unit in activities:
        for part in emissions.factors.parts(carrier):
            try:
                factor_id = emissions.factors.default_id(carrier, part, unit=unit)
                # A whole hour lies within one local day wherever the zone's offset is whole
                # hours; elsewhere the factor in force at the start of the hour applies.
                factor = factor_spans(emissions.factors, factor_id=factor_id, period=period,
                                      timezone=eq.timezone)[0][1]
            except UnknownFactor as exc:
                missing.add(str(exc))
                continue
            in_unit = convert(quantity, from_unit=unit, to_unit=factor.activity_unit)
            emitted = emission_line(factor, activity=meter, quantity=in_unit,
                                    unit=factor.activity_unit)
            activity = f"{tag}_upstream" if part == "upstream" else tag
            out.append(_ghg_point(eq, hour_ms, activity, emitted.scope or 0, emitted.co2e_kg,
                                  in_unit, factor.activity_unit, meter, factor.id,
                                  factor.version, factor.value, part=part))
    return out


def _carrier(eq: EquipmentInfo, role: str) -> str:
    # As the indicators: the meter's `carrier` attribute, else fuel oil.
    return next((s.attributes["carrier"] for s in eq.with_role(role)
                 if "carrier" in s.attributes), "fuel_oil")


def _ghg_point(eq: EquipmentInfo, hour_ms: int, activity: str, scope: int, co2e_kg: float,
               quantity: float, unit: str, meter: str, factor_id: str, version: str,
               value: float, *, part: str = "") -> str:
    # Every field every time: a rewrite of the point must leave nothing of the old one.
    fields: dict[str, float | str] = {
        "co2e_kg": float(co2e_kg), "quantity": float(quantity), "quantity_unit": unit,
        "meter": meter, "factor_id": factor_id, "factor_version": version,
        "factor_value": float(value), "part": part}
    return line(GHG_HOURLY, {"site": eq.site, "equipment": eq.id, "scope": str(scope),
                             "activity": activity}, fields, hour_ms)


def _leak_points(emissions: EmissionInputs, store: ReadingsStore, eq: EquipmentInfo,
                 start: datetime, end: datetime, missing: set[str]) -> list[str]:
    """Refrigerant leaks: each top-up's CO2e in the hour the top-up was recorded at (a top-up
    is the best estimate of what leaked since the last one, with no hour of its own). Hours
    that hold a leak point but no top-up any more (a record deleted or moved) get a zero."""
    by_hour: dict[int, list[tuple[float, float, str, str, float]]] = defaultdict(list)
    for top_up in emissions.top_ups(eq.site, eq.id, start, end):
        try:
            leak = refrigerant_emission(emissions.gwp, refrigerant=top_up.refrigerant,
                                        leaked_kg=top_up.mass_kg, report=emissions.gwp_report)
        except UnknownFactor as exc:
            missing.add(str(exc))
            continue
        hour_ms = int(hour_floor(top_up.at).timestamp() * 1000)
        by_hour[hour_ms].append((leak.co2e_kg, leak.quantity, leak.factor_id,
                                 leak.factor_version, leak.factor_value))
    out = []
    earlier = store.ghg_hourly(site=eq.site, equipment=eq.id, activity="refrigerant_leak",
                               start=start, end=end)
    for hour_ms in sorted(earlier.keys() - by_hour.keys()):
        if earlier[hour_ms]:
            out.append(_ghg_point(eq, hour_ms, "refrigerant_leak", 1, 0.0, 0.0, "kg",
                                  "refrigerant_top_up", "", "", 0.0))
    for hour_ms, leaks in sorted(by_hour.items()):
        ids = sorted({leak[2] for leak in leaks})
        co2e, kg = sum(leak[0] for leak in leaks), sum(leak[1] for leak in leaks)
        # Two refrigerants in one hour: their mass-weighted GWP, so that co2e = kg × value.
        out.append(_ghg_point(
            eq, hour_ms, "refrigerant_leak", 1, co2e, kg, "kg", "refrigerant_top_up",
            ",".join(ids), leaks[0][3], leaks[0][4] if len(ids) == 1 else co2e / kg))
    return out


def _avoided_point(eq: EquipmentInfo, at_ms: int, baseline: str, batch_id: int,
                   avoided: float, baseline_kg: float, actual: float, quantity: float,
                   output: str) -> str:
    # Every field every time: a rewrite of the point must leave nothing of the old one.
    return line(AVOIDED_BATCHES, {"site": eq.site, "equipment": eq.id, "baseline": baseline}, {
        "batch_id": int(batch_id), "avoided_co2e_kg": float(avoided),
        "baseline_co2e_kg": float(baseline_kg), "actual_co2e_kg": float(actual),
        "output_quantity": float(quantity), "output": output}, at_ms)


def _avoided_points(emissions: EmissionInputs, store: ReadingsStore, eq: EquipmentInfo,
                    start: datetime, end: datetime, around: timedelta,
                    max_gap: timedelta) -> list[str]:
    """Avoided emissions of each batch ending in `(start, end]` (the period a batch belongs
    to, as in the indicators) against each stored baseline of the equipment's kind, computed
    by the indicators themselves over the batch's own span (`compute(batch_id=…)`, what
    `GET …/batches/{id}/indicators?baseline=…` answers), at the batch's end. A point of the
    window no longer backed by a batch and a baseline (record deleted, moved, or no longer
    computable) is zeroed, with batch_id 0."""
    if emissions.records is None:
        return []
    references = References.load() if emissions.references is None else emissions.references
    out: dict[tuple[int, str], str] = {}
    with emissions.records() as db:
        baselines = list(db.scalars(live(Baseline).filter_by(equipment_kind=eq.kind.value)
                                    .order_by(Baseline.name)))
        batches = list(db.scalars(
            live(Batch).filter_by(site=eq.site, equipment=eq.id)
            .where(Batch.ended_at > start, Batch.ended_at <= end)
            .order_by(Batch.ended_at, Batch.id))) if baselines else []
        for batch in batches:
            for baseline in baselines:
                try:
                    span = batch_period(batch)
                    inputs = Inputs(
                        equipment=eq, store=store, db=db, factors=emissions.factors,
                        gwp=emissions.gwp, gwp_report=emissions.gwp_report,
                        evidence=evidence_for(store, span, around=around, max_gap=max_gap),
                        references=references, timezone=eq.timezone, around=around,
                        max_gap=max_gap)
                    [avoided] = compute(inputs, period=span, batch_id=batch.id,
                                        baseline=baseline.name).ghg.avoided
                except ValueError as exc:  # IndicatorError, PeriodError
                    log.warning("avoided_batches of %s/%s batch %d, baseline %s: %s",
                                eq.site, eq.id, batch.id, baseline.name, exc)
                    continue
                at_ms = int(batch.ended_at.timestamp() * 1000)
                out[(at_ms, baseline.name)] = _avoided_point(
                    eq, at_ms, baseline.name, batch.id, avoided.avoided_co2e_kg,
                    avoided.baseline_co2e_kg, avoided.actual_co2e_kg, avoided.output_quantity,
                    avoided.output)
    earlier = store.avoided_batches(site=eq.site, equipment=eq.id, start=start, end=end)
    zeros = [_avoided_point(eq, at_ms, name, 0, 0.0, 0.0, 0.0, 0.0, "")
             for at_ms, name in sorted(earlier - out.keys())]
    return zeros + [out[key] for key in sorted(out)]


def rollup_equipment(*, eq: EquipmentInfo, store: ReadingsStore, start: datetime,
                     end: datetime, around: timedelta, max_gap: timedelta,
                     bands: dict[str, tuple[float, float]] | None = None,
                     emissions: EmissionInputs | None = None) -> int:
    """Recompute and write the rollups of one equipment for the hours of `[start, end)`;
    `bands` (role → (low, high) °C, default `References.bands()`) are the bands whose time
    below/within/above is kept; `emissions` (default: the shipped factors, AR4, no top-ups)
    what the hourly emissions are computed with."""
    bands = References.load().bands() if bands is None else bands
    emissions = EmissionInputs() if emissions is None else emissions
    missing: set[str] = set()
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
        kwh: dict[str, float] = {}
        fuel_volume: list[tuple[float, str]] = []
        if energy_sensors:

            def fetch(sensor: SensorInfo, at: int = hour_ms) -> CounterSeries:
                return samples.typed(sensor, at)

            energy = energy_from_samples(equipment=eq, fetch=fetch, period=period,
                                         max_gap_ms=max_gap_ms)
            for figure in energy.sources:
                kwh[figure.source] = figure.energy_kwh
                lines.append(line(ENERGY_HOURLY, {**tags, "source": figure.source}, {
                    "energy_kwh": float(figure.energy_kwh), "method": figure.method,
                    "coverage": float(figure.coverage), "readings": float(figure.readings),
                    "resets": float(figure.resets),
                    "rollovers": float(figure.rollovers)}, hour_ms))
        for sensor in eq.sensors:
            if sensor.role.kind is Kind.COUNTER:
                typed = samples.typed(sensor, hour_ms)
                window, unit = typed.samples, typed.unit
                delta = counter_delta(window, start_ms=hour_ms, end_ms=hour_ms + _HOUR_MS,
                                      wrap=counter_wrap(sensor, typed.data_type))
                known = delta is not None and (delta.readings > 0
                                               or (delta.start_exact and delta.end_exact))
                if delta is not None and known:
                    sensor_fields.setdefault((sensor.id, hour_ms), {})["increase"] = delta.delta
                    if sensor.role.name == "fuel_volume":
                        fuel_volume.append((delta.delta, unit))
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
        lines += _emission_points(emissions, eq, hour, kwh, fuel_volume, missing)
        hour += HOUR
    lines += _leak_points(emissions, store, eq, first, last, missing)
    for reason in sorted(missing):
        log.warning("ghg_hourly of %s/%s %s → %s: %s", eq.site, eq.id, first.isoformat(),
                    last.isoformat(), reason)
    for sensor_id, hour_ms, stats in store.hourly_stats(site=eq.site, equipment=eq.id,
                                                       start=first, end=last):
        sensor_fields.setdefault((sensor_id, hour_ms), {}).update(stats)
    for (sensor_id, hour_ms), fields in sensor_fields.items():
        lines.append(line(SENSOR_HOURLY, {**tags, "sensor": sensor_id,
                                          "role": roles.get(sensor_id, "")}, fields, hour_ms))
    store.write(lines)
    # After the hourly points: a batch over 31 days is computed from them, as in the api.
    avoided = _avoided_points(emissions, store, eq, first, last, around, max_gap)
    store.write(avoided)
    return len(lines) + len(avoided)


def run_rollups(*, registry: SiteRegistry, store: ReadingsStore, start: datetime,
                end: datetime, around: timedelta, max_gap: timedelta,
                chunk: timedelta = timedelta(days=1),
                bands: dict[str, tuple[float, float]] | None = None,
                emissions: EmissionInputs | None = None) -> RollupReport:
    """Rollups of every equipment for the hours of `[start, end)`, a `chunk` at a time (a
    year of 10-s readings is never held in memory at once)."""
    bands = References.load().bands() if bands is None else bands
    emissions = EmissionInputs() if emissions is None else emissions
    points = 0
    first, last = hour_floor(start), hour_floor(end - timedelta(microseconds=1)) + HOUR
    for eq in registry.equipment.values():
        piece = first
        while piece < last:
            points += rollup_equipment(eq=eq, store=store, start=piece,
                                       end=min(piece + chunk, last), around=around,
                                       max_gap=max_gap, bands=bands, emissions=emissions)
            piece += chunk
    return RollupReport(start=first, end=last, hours=int((last - first) / HOUR), points=points)


class RollupScheduler:
    """Inside the api process: every `interval`, recompute the last `lookback` hours."""

    def __init__(self, *, registry: SiteRegistry, store: ReadingsStore, interval: timedelta,
                 lookback: timedelta, around: timedelta, max_gap: timedelta,
                 emissions: EmissionInputs | None = None) -> None:
        self._args = (registry, store, lookback, around, max_gap)
        self._emissions = emissions
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
                                               max_gap=max_gap, emissions=self._emissions)
                self.last_error = None
            except InfluxError as exc:
                # InfluxDB down: the next run recomputes the same hours; nothing is lost.
                self.last_error = str(exc)
                log.warning("rollups failed, retrying in %.0f s: %s", self._interval, exc)
            except Exception as exc:  # a bad series must not stop every later run
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("rollups failed, retrying in %.0f s", self._interval)
            self._stop.wait(self._interval)
