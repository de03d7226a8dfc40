"""The api's one owner of InfluxDB reads. Every request value reaches InfluxQL quoted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from telemetry.influx.client import InfluxClient
from telemetry.influx.influxql import quote_ident, tag_equals, time_literal
from telemetry.influx.schema import READINGS, REASON_FIELD, VALUE_FIELD


@dataclass(frozen=True, slots=True)
class LatestReading:
    sensor: str
    time_ms: int
    value: float | None
    unit: str
    quality: str
    reason: str | None


class ReadingsStore:
    def __init__(self, client: InfluxClient) -> None:
        self.client = client

    def latest(self, *, site: str, equipment: str, since: datetime) -> list[LatestReading]:
        """The newest reading of each sensor of an equipment (good or not) since `since`."""
        q = (f"SELECT last({quote_ident(VALUE_FIELD)}) AS value FROM {quote_ident(READINGS)}"
             f" WHERE {tag_equals('site', site)} AND {tag_equals('equipment', equipment)}"
             f" AND time >= {time_literal(since)} GROUP BY sensor, unit, quality")
        newest: dict[str, LatestReading] = {}
        for series in self.client.query(q):
            for row in series.rows():
                reading = LatestReading(
                    sensor=series.tags["sensor"], time_ms=int(row["time"]), value=row["value"],
                    unit=series.tags.get("unit", ""), quality=series.tags.get("quality", ""),
                    reason=None)
                kept = newest.get(reading.sensor)
                if kept is None or reading.time_ms > kept.time_ms:
                    newest[reading.sensor] = reading
        # Bad readings carry no value, only a reason: look for newer ones of those too.
        q_bad = (f"SELECT last({quote_ident(REASON_FIELD)}) AS reason FROM {quote_ident(READINGS)}"
                 f" WHERE {tag_equals('site', site)} AND {tag_equals('equipment', equipment)}"
                 f" AND {tag_equals('quality', 'bad')} AND time >= {time_literal(since)}"
                 f" GROUP BY sensor, unit")
        for series in self.client.query(q_bad):
            for row in series.rows():
                sensor = series.tags["sensor"]
                kept = newest.get(sensor)
                if kept is None or int(row["time"]) > kept.time_ms:
                    newest[sensor] = LatestReading(
                        sensor=sensor, time_ms=int(row["time"]), value=None,
                        unit=series.tags.get("unit", ""), quality="bad", reason=row["reason"])
        return sorted(newest.values(), key=lambda r: r.sensor)

    def counter_samples(
        self, *, site: str, sensor: str, start: datetime, end: datetime, around: timedelta
    ) -> tuple[list[tuple[int, float]], str]:
        """Good readings of a counter in `[start, end)` plus the nearest one beyond each end.

        Returns the time-sorted samples and the unit they are in.
        """
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
        samples: dict[int, float] = {}
        units: set[str] = set()
        for series in self.client.query(";".join(statements)):
            units.add(series.tags.get("unit", ""))
            for row in series.rows():
                if row["value"] is not None:
                    samples[int(row["time"])] = float(row["value"])
        if len(units) > 1:
            raise ValueError(f"sensor {sensor} changed unit ({', '.join(sorted(units))}) "
                             "within the period")
        return sorted(samples.items()), next(iter(units), "")
