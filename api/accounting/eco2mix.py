"""RTE éCO2mix grid carbon intensity, imported from files into a series.

Two formats (docs/sources.md#rte-eco2mix): RTE's download (`.xls` files that are really
tab-separated latin-1
text, local French times in `Date` and `Heures`, intensity in `Taux de Co2`, g/kWh) and the
ODRÉ open-data JSON export (`date_heure` with its offset, `taux_co2`).

The figure is the *direct emissions of French production*: not consumption, not life cycle,
about half the ADEME consumption factor. The api only uses it to weight consumption in time,
labelled as such, beside — never instead of — the location-based scope 2 figure.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
SOURCE = "rte-eco2mix"


class Eco2mixError(ValueError):
    """A file that is neither format, or holds no intensity at all."""


@dataclass(frozen=True, slots=True)
class IntensityPoint:
    time_ms: int
    co2_g_per_kwh: float


def _day(text: str) -> date:
    text = text.strip()
    if "/" in text:
        d, m, y = text.split("/")
        return date(int(y), int(m), int(d))
    return date.fromisoformat(text)


def parse_tsv(data: bytes) -> list[IntensityPoint]:
    """RTE's tab-separated download. Rows without an intensity (not yet published) and the
    trailing disclaimer are skipped. On the night clocks go back, the second 02:xx is the
    later one (standard time)."""
    reader = csv.DictReader(io.StringIO(data.decode("latin-1")), delimiter="\t")
    names = {(name or "").strip().lower(): name for name in reader.fieldnames or ()}
    try:
        date_col, hour_col, co2_col = (names[k] for k in ("date", "heures", "taux de co2"))
    except KeyError as exc:
        raise Eco2mixError(f"not an éCO2mix download: no column {exc.args[0]!r}") from None
    points: list[IntensityPoint] = []
    seen: set[tuple[date, time]] = set()
    for row in reader:
        value = (row.get(co2_col) or "").strip().replace(",", ".")
        try:
            day, clock = _day(row.get(date_col) or ""), time.fromisoformat(
                (row.get(hour_col) or "").strip())
            intensity = float(value)
        except ValueError:
            continue
        fold = 1 if (day, clock) in seen else 0
        seen.add((day, clock))
        moment = datetime.combine(day, clock, PARIS).replace(fold=fold)
        points.append(IntensityPoint(int(moment.timestamp() * 1000), intensity))
    if not points:
        raise Eco2mixError("no intensity found in the éCO2mix file")
    return points


def parse_odre_json(data: bytes) -> list[IntensityPoint]:
    """The ODRÉ export: a JSON list of records (or `{"results": [...]}` from the API)."""
    try:
        body = json.loads(data)
    except json.JSONDecodeError as exc:
        raise Eco2mixError(f"not JSON: {exc}") from None
    records = body.get("results", []) if isinstance(body, dict) else body
    points: list[IntensityPoint] = []
    for record in records if isinstance(records, list) else []:
        fields = record.get("fields", record) if isinstance(record, dict) else {}
        try:
            moment = datetime.fromisoformat(str(fields["date_heure"]))
            intensity = float(fields["taux_co2"])
        except (KeyError, TypeError, ValueError):
            continue
        if moment.tzinfo is None:
            continue  # a time without its offset is ambiguous once a year: refuse to guess
        points.append(IntensityPoint(int(moment.timestamp() * 1000), intensity))
    if not points:
        raise Eco2mixError("no record with date_heure and taux_co2 in the ODRÉ file")
    return points


def parse(data: bytes) -> list[IntensityPoint]:
    """Either format, told apart by the first character."""
    return parse_odre_json(data) if data.lstrip()[:1] in (b"[", b"{") else parse_tsv(data)


def lines(points: list[IntensityPoint]) -> list[str]:
    """Line protocol for the points (idempotent: a re-import overwrites the same points)."""
    from telemetry.influx.lineprotocol import line
    from telemetry.influx.schema import GRID_INTENSITY

    return [line(GRID_INTENSITY, {"source": SOURCE}, {"co2_g_per_kwh": p.co2_g_per_kwh},
                 p.time_ms) for p in points]
