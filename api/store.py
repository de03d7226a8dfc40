"""The api's one owner of InfluxDB reads. Every request value reaches InfluxQL quoted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from telemetry.influx.client import InfluxClient, first_value
from telemetry.influx.influxql import quote_ident, quote_string, tag_equals, time_literal
from telemetry.influx.schema import (
    AVOIDED_BATCHES,
    BAND_HOURLY,
    ENERGY_HOURLY,
    GHG_HOURLY,
    GRID_INTENSITY,
    READINGS,
    REASON_FIELD,
    SENSOR_HOURLY,
    STATE_HOURLY,
    TYPE_FIELD,
    VALUE_FIELD,
)


@dataclass(frozen=True, slots=True)
class LatestReading:
    sensor: str
    time_ms: int
    value: float | None
    unit: str
    quality: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class CounterSeries:
    """A sensor's time-sorted good (ms, value) readings around a period, their unit, and for a
    counter the register type its gateway stored with them (None: unknown, e.g. older data)."""

    samples: list[tuple[int, float]]
    unit: str
    data_type: str | None = None


@dataclass(frozen=True, slots=True)
class EnergyRollupRow:
    energy_kwh: float
    method: Literal["counter_difference", "power_integral", "mixed"]
    readings: int
    resets: int
    covered_hours: float
    hours: int
    rollovers: int = 0


class ReadingsStore:
    def __init__(self, client: InfluxClient) -> None:
        self.client = client

    def latest(self, *, site: str, equipment: str, since: datetime) -> list[LatestReading]:
        """The newest reading of each sensor of an equipment (good or not) since `since`.

        One request per equipment, whatever its number of sensors: the overview page asks it
        for every machine every few seconds."""
        where = (f"{tag_equals('site', site)} AND {tag_equals('equipment', equipment)}"
                 f" AND time >= {time_literal(since)}")
        measurement = quote_ident(READINGS)
        statements = [
            f"SELECT last({quote_ident(VALUE_FIELD)}) AS value FROM {measurement}"
            f" WHERE {where} GROUP BY sensor, unit, quality",
            # Bad readings carry no value, only a reason: look for newer ones of those too.
            f"SELECT last({quote_ident(REASON_FIELD)}) AS reason FROM {measurement}"
            f" WHERE {where} AND {tag_equals('quality', 'bad')} GROUP BY sensor, unit",
        ]
        newest: dict[str, LatestReading] = {}
        for series in self.client.query(";".join(statements)):
            bad = "reason" in series.columns
            for row in series.rows():
                sensor = series.tags["sensor"]
                reading = LatestReading(
                    sensor=sensor, time_ms=int(row["time"]),
                    value=None if bad else row["value"], unit=series.tags.get("unit", ""),
                    quality="bad" if bad else series.tags.get("quality", ""),
                    reason=row["reason"] if bad else None)
                kept = newest.get(sensor)
                if kept is None or reading.time_ms > kept.time_ms:
                    newest[sensor] = reading
        return sorted(newest.values(), key=lambda r: r.sensor)

    def counter_samples(
        self, *, site: str, sensor: str, start: datetime, end: datetime, around: timedelta
    ) -> tuple[list[tuple[int, float]], str]:
        """Good readings of a sensor in `[start, end)` plus the nearest one beyond each end
        (within `around`): what a counter difference, an integral or a time-in-state needs.

        Returns the time-sorted samples and the unit they are in.
        """
        found = self._samples(site=site, sensor=sensor, start=start, end=end, around=around,
                              typed=False)
        return found.samples, found.unit

    def counter_series(
        self, *, site: str, sensor: str, start: datetime, end: datetime, around: timedelta
    ) -> CounterSeries:
        """As `counter_samples`, with the register type the gateway stored beside the counter's
        readings (the `dtype` field, its latest value around the period; None if absent)."""
        return self._samples(site=site, sensor=sensor, start=start, end=end, around=around,
                             typed=True)

    def _samples(self, *, site: str, sensor: str, start: datetime, end: datetime,
                 around: timedelta, typed: bool) -> CounterSeries:
        where = (f"{tag_equals('site', site)} AND {tag_equals('sensor', sensor)}"
                 f" AND {tag_equals('quality', 'good')}")
        value = quote_ident(VALUE_FIELD)
        measurement = quote_ident(READINGS)
        statements = [
            f"SELECT last({value}) AS value FROM {measurement} WHERE {where}"
            f" AND time >= {time_literal(start - around)} AND time <= {time_literal(start)}"
            " GROUP BY unit",
            f"SELECT {value} AS value FROM {measurement} WHERE {where}"
            f" AND time > {time_literal(start)} AND time < {time_literal(end)} GROUP BY unit",
            f"SELECT first({value}) AS value FROM {measurement} WHERE {where}"
            f" AND time >= {time_literal(end)} AND time < {time_literal(end + around)}"
            " GROUP BY unit",
        ]
        if typed:  # in the same request: one round trip still
            statements.append(
                f"SELECT last({quote_ident(TYPE_FIELD)}) AS dtype FROM {measurement}"
                f" WHERE {where} AND time >= {time_literal(start - around)}"
                f" AND time < {time_literal(end + around)}")
        samples: dict[int, float] = {}
        units: set[str] = set()
        data_type: str | None = None
        for series in self.client.query(";".join(statements)):
            if "dtype" in series.columns:
                data_type = next((str(r["dtype"]) for r in series.rows() if r["dtype"]), None)
                continue
            units.add(series.tags.get("unit", ""))
            for row in series.rows():
                if row["value"] is not None:
                    samples[int(row["time"])] = float(row["value"])
        if len(units) > 1:
            raise ValueError(f"sensor {sensor} changed unit ({', '.join(sorted(units))}) "
                             "within the period")
        return CounterSeries(sorted(samples.items()), next(iter(units), ""), data_type)

    # --- rollups (docs/influxdb-schema.md) ------------------------------------------------

    def write(self, lines: list[str]) -> None:
        """Write rollup points (line protocol), in batches the server accepts."""
        for i in range(0, len(lines), 5000):
            self.client.write(lines[i:i + 5000])

    @staticmethod
    def _where(site: str, key: str, value: str, start: datetime, end: datetime) -> str:
        return (f"{tag_equals('site', site)} AND {tag_equals(key, value)}"
                f" AND time >= {time_literal(start)} AND time < {time_literal(end)}")

    def energy_rollup(self, *, site: str, equipment: str, start: datetime,
                      end: datetime) -> dict[str, EnergyRollupRow]:
        """Sums of `energy_hourly` per source over `[start, end)` (hour-aligned)."""
        where = self._where(site, "equipment", equipment, start, end)
        m = quote_ident(ENERGY_HOURLY)
        used: dict[str, set[str]] = {}
        # One query per method: InfluxQL that every server version serves has no DISTINCT on
        # a string field that 3 Core also accepts.
        for method in ("counter_difference", "power_integral"):
            statement = (f"SELECT count(energy_kwh) AS n FROM {m} WHERE {where}"
                         f" AND method = {quote_string(method)} GROUP BY source")
            for series in self.client.query(statement):
                if any((row["n"] or 0) > 0 for row in series.rows()):
                    used.setdefault(series.tags["source"], set()).add(method)
        sums = (f"SELECT sum(energy_kwh) AS energy, sum(coverage) AS covered, sum(readings) AS"
                f" readings, sum(resets) AS resets, sum(rollovers) AS rollovers,"
                f" count(energy_kwh) AS hours FROM {m}"
                f" WHERE {where} GROUP BY source")
        out: dict[str, EnergyRollupRow] = {}
        for series in self.client.query(sums):
            for row in series.rows():
                source = series.tags["source"]
                kinds = used.get(source, set())
                label: Literal["counter_difference", "power_integral", "mixed"] = (
                    "mixed" if len(kinds) != 1 else
                    "counter_difference" if "counter_difference" in kinds else "power_integral")
                out[source] = EnergyRollupRow(
                    energy_kwh=float(row["energy"] or 0.0), method=label,
                    readings=int(row["readings"] or 0), resets=int(row["resets"] or 0),
                    covered_hours=float(row["covered"] or 0.0), hours=int(row["hours"] or 0),
                    rollovers=int(row["rollovers"] or 0))
        return out

    def increase_rollup(self, *, site: str, sensor: str, start: datetime,
                        end: datetime) -> float | None:
        """Sum of a counter's hourly `increase` over `[start, end)`; None without rollups."""
        statement = (f"SELECT sum(increase) AS total FROM {quote_ident(SENSOR_HOURLY)}"
                     f" WHERE {self._where(site, 'sensor', sensor, start, end)}")
        value = first_value(self.client.query(statement), "total")
        return None if value is None else float(value)

    def state_rollup(self, *, site: str, sensor: str, start: datetime,
                     end: datetime) -> dict[float, float]:
        """Seconds spent in each state of a state sensor over `[start, end)`."""
        statement = (f"SELECT sum(seconds) AS seconds FROM {quote_ident(STATE_HOURLY)}"
                     f" WHERE {self._where(site, 'sensor', sensor, start, end)} GROUP BY state")
        out: dict[float, float] = {}
        for series in self.client.query(statement):
            for row in series.rows():
                out[float(series.tags["state"])] = float(row["seconds"] or 0.0)
        return out

    def state_hours(self, *, site: str, sensor: str, start: datetime,
                    end: datetime) -> list[tuple[int, float, float]]:
        """(hour start ms, state, seconds) of a state sensor's hourly rollups over
        `[start, end)`: what splits a long period's states by planned time."""
        statement = (f"SELECT seconds FROM {quote_ident(STATE_HOURLY)}"
                     f" WHERE {self._where(site, 'sensor', sensor, start, end)} GROUP BY state")
        return [(int(row["time"]), float(series.tags["state"]), float(row["seconds"] or 0.0))
                for series in self.client.query(statement) for row in series.rows()]

    def band_rollup(self, *, site: str, sensor: str, start: datetime,
                    end: datetime) -> dict[str, tuple[float, float, float]]:
        """Seconds below, within and above each band a gauge was rolled up against over
        `[start, end)`, by band label (`band_hourly`)."""
        # The measurement's name is owned by api.accounting.rollups; spelled here to keep the store
        # free of an import cycle (rollups imports the store).
        statement = (f"SELECT sum(below_s) AS below, sum(within_s) AS within, sum(above_s) AS"
                     f" above FROM {quote_ident(BAND_HOURLY)}"
                     f" WHERE {self._where(site, 'sensor', sensor, start, end)} GROUP BY band")
        out: dict[str, tuple[float, float, float]] = {}
        for series in self.client.query(statement):
            for row in series.rows():
                out[series.tags["band"]] = (float(row["below"] or 0.0),
                                            float(row["within"] or 0.0),
                                            float(row["above"] or 0.0))
        return out

    def hourly_stats(self, *, site: str, equipment: str, start: datetime,
                     end: datetime) -> list[tuple[str, int, dict[str, float]]]:
        """(sensor, hour start ms, {mean, min, max, count}) of good readings, hour by hour."""
        where = (f"{tag_equals('site', site)} AND {tag_equals('equipment', equipment)}"
                 f" AND {tag_equals('quality', 'good')} AND time >= {time_literal(start)}"
                 f" AND time < {time_literal(end)}")
        v = quote_ident(VALUE_FIELD)
        statement = (f"SELECT mean({v}) AS mean, min({v}) AS min, max({v}) AS max,"
                     f" count({v}) AS count FROM {quote_ident(READINGS)} WHERE {where}"
                     " GROUP BY time(1h), sensor fill(none)")
        out: list[tuple[str, int, dict[str, float]]] = []
        for series in self.client.query(statement):
            for row in series.rows():
                if row["count"]:
                    out.append((series.tags["sensor"], int(row["time"]),
                                {k: float(row[k]) for k in ("mean", "min", "max", "count")}))
        return out

    def energy_hourly(self, *, site: str, equipment: str, source: str, start: datetime,
                      end: datetime) -> dict[int, float]:
        """The hourly rollup energy of one source, by hour start (ms)."""
        statement = (f"SELECT energy_kwh FROM {quote_ident(ENERGY_HOURLY)}"
                     f" WHERE {self._where(site, 'equipment', equipment, start, end)}"
                     f" AND {tag_equals('source', source)}")
        return {int(row["time"]): float(row["energy_kwh"])
                for series in self.client.query(statement) for row in series.rows()
                if row["energy_kwh"] is not None}

    def ghg_hourly(self, *, site: str, equipment: str, activity: str, start: datetime,
                   end: datetime) -> dict[int, float]:
        """The `ghg_hourly` CO2e of one activity, by hour start (ms)."""
        statement = (f"SELECT co2e_kg FROM {quote_ident(GHG_HOURLY)}"
                     f" WHERE {self._where(site, 'equipment', equipment, start, end)}"
                     f" AND {tag_equals('activity', activity)}")
        return {int(row["time"]): float(row["co2e_kg"])
                for series in self.client.query(statement) for row in series.rows()
                if row["co2e_kg"] is not None}

    def avoided_batches(self, *, site: str, equipment: str, start: datetime,
                        end: datetime) -> set[tuple[int, str]]:
        """(time in ms, baseline) of the `avoided_batches` points of an equipment in
        `(start, end]`, the window whose batch ends a rollup run recomputes."""
        statement = (f"SELECT avoided_co2e_kg FROM {quote_ident(AVOIDED_BATCHES)}"
                     f" WHERE {tag_equals('site', site)} AND {tag_equals('equipment', equipment)}"
                     f" AND time > {time_literal(start)} AND time <= {time_literal(end)}"
                     f" GROUP BY {quote_ident('baseline')}")
        return {(int(row["time"]), series.tags.get("baseline", ""))
                for series in self.client.query(statement) for row in series.rows()}

    def hourly_intensity(self, *, start: datetime, end: datetime) -> dict[int, float]:
        """Mean grid intensity (g/kWh) of each hour with imported data."""
        statement = (f"SELECT mean(co2_g_per_kwh) AS g FROM {quote_ident(GRID_INTENSITY)}"
                     f" WHERE time >= {time_literal(start)} AND time < {time_literal(end)}"
                     " GROUP BY time(1h) fill(none)")
        return {int(row["time"]): float(row["g"])
                for series in self.client.query(statement) for row in series.rows()
                if row["g"] is not None}
