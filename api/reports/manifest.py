"""The manifest of a published report: everything its figures rest on, and the figures.

A report is computed by `api.reports.content.assemble`; here the same call runs with two
witnesses, so that what it read is known without a second list of its inputs to keep in step:
- `RecordingStore`, a `ReadingsStore` whose every read (each public method but `write`) keeps
  its arguments, its point count and a digest of the values it answered;
- `tracking_records`, a listener on the session that notes every record row loaded (kind, id,
  version, equipment): the records the report used, whatever query loaded them.
Beside them: the content hash of each data file (the shipped `api/data/*.yaml` and the user's
factor and GWP files) with a digest of each of its entries (a factor id@version, a gas, a
blend…), the computation's settings, the code version, and every figure of the report by name.

Digests are sha256 of a canonical JSON (sorted keys, floats written by `repr`, which is exact:
a float reads back to the same bits), so equal inputs give equal digests in any process.
Figures are kept exactly (no rounding); comparing two manifests compares them to the last bit.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import json
import math
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from api.accounting.factors import DATA, SHIPPED_FACTORS, FactorTable
from api.accounting.gwp import SHIPPED_REFRIGERANTS, GwpTable
from api.accounting.references import References
from api.periods import Period
from api.records.calendars import KIND as CALENDARS
from api.records.calendars import ShiftCalendarVersion
from api.records.kinds import KINDS
from api.reports.content import Report, ReportSources, assemble
from api.reports.exports import rows_of
from api.settings import ApiSettings
from api.sites import SiteRegistry
from api.store import ReadingsStore
from telemetry.influx.client import InfluxClient
from telemetry.influx.schema import (
    AVOIDED_BATCHES,
    BAND_HOURLY,
    ENERGY_HOURLY,
    GHG_HOURLY,
    GRID_INTENSITY,
    READINGS,
    SENSOR_HOURLY,
    STATE_HOURLY,
)
from telemetry.loader import YamlDocument

FORMAT = 1
PACKAGE = "dynamo-monitoring"
REPO = Path(__file__).resolve().parents[2]
# The measurement each read of the store looks at (a read not listed: its method's name).
MEASUREMENTS = {
    "latest": READINGS, "counter_samples": READINGS, "counter_series": READINGS,
    "hourly_stats": READINGS,
    "energy_rollup": ENERGY_HOURLY, "energy_hourly": ENERGY_HOURLY,
    "increase_rollup": SENSOR_HOURLY, "state_rollup": STATE_HOURLY, "band_rollup": BAND_HOURLY,
    "ghg_hourly": GHG_HOURLY, "avoided_batches": AVOIDED_BATCHES,
    "hourly_intensity": GRID_INTENSITY,
}
# Settings that change what a report computes (the rest say where things are).
COMPUTATION_SETTINGS = ("api_gwp_report", "boundary_lookaround_s", "integral_max_gap_s")


# --- canonical form and digests ------------------------------------------------------------

def canonical(value: Any) -> Any:
    """`value` as plain JSON data, the same for equal values in any process: times as ISO
    8601 UTC, durations in seconds, sets sorted, dataclasses and models as mappings."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Path):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return canonical(asdict(value))
    if hasattr(value, "model_dump"):
        return canonical(value.model_dump(mode="json"))
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((canonical(v) for v in value), key=_text)
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any) -> str:
    """sha256 of the canonical JSON of `value` (sorted keys; floats by `repr`, exact)."""
    return hashlib.sha256(_text(canonical(value)).encode("utf-8")).hexdigest()


def figure_value(value: Any) -> Any:
    """A figure as the manifest keeps it: exact numbers; NaN and infinities (which JSON
    cannot carry) as their names."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


# --- what the report read from InfluxDB ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SeriesRead:
    """One read of the store: which measurement, which sensor or equipment, which window,
    how many points it answered and the digest of their values."""

    key: str
    method: str
    measurement: str
    equipment: str | None
    sensor: str | None
    args: dict[str, Any]
    points: int
    sha256: str

    @property
    def label(self) -> str:
        who = self.sensor or self.equipment or "site"
        start, end = self.args.get("start"), self.args.get("end")
        window = f" [{start} → {end})" if start and end else ""
        return f"{self.measurement} {who}{window}"


def _points(result: Any) -> int:
    """How many points a read answered: samples of a counter, hours of a rollup, …"""
    if result is None:
        return 0
    if isinstance(result, tuple) and result and isinstance(result[0], list):
        return len(result[0])  # counter_samples: (samples, unit)
    samples = getattr(result, "samples", None)  # counter_series: CounterSeries
    if isinstance(samples, list):
        return len(samples)
    if isinstance(result, list | dict | set | tuple):
        return len(result)
    return 1


class RecordingStore(ReadingsStore):
    """The api's store, keeping a `SeriesRead` of every read the report makes."""

    def __init__(self, client: InfluxClient, registry: SiteRegistry) -> None:
        super().__init__(client)
        self.reads: dict[str, SeriesRead] = {}
        self._owner = {sensor.id: eq.id for eq in registry.equipment.values()
                       for sensor in eq.sensors}
        for name, function in inspect.getmembers(ReadingsStore, inspect.isfunction):
            if not name.startswith("_") and name != "write":
                setattr(self, name, self._recording(name, function))

    def _recording(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(function)

        def read(*args: Any, **kwargs: Any) -> Any:
            result = function(self, *args, **kwargs)
            bound = signature.bind(self, *args, **kwargs)
            arguments = canonical({k: v for k, v in bound.arguments.items() if k != "self"})
            key = f"{name}:{_text(arguments)}"
            if key not in self.reads:
                sensor = arguments.get("sensor")
                self.reads[key] = SeriesRead(
                    key=key, method=name, measurement=MEASUREMENTS.get(name, name),
                    equipment=arguments.get("equipment") or self._owner.get(sensor or ""),
                    sensor=sensor, args=arguments, points=_points(result),
                    sha256=digest(result))
            return result

        return read


# --- which records the report used ---------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RecordRef:
    kind: str
    id: int
    version: int
    equipment: str | None
    voided: bool


_KIND_OF = {kind.table: kind.name for kind in KINDS.values()}


@contextmanager
def tracking_records(db: Session) -> Iterator[dict[tuple[str, int], RecordRef]]:
    """Every record row `db` loads while the block runs, by (kind, id)."""
    found: dict[tuple[str, int], RecordRef] = {}

    def loaded(_session: Session, instance: Any) -> None:
        kind = _KIND_OF.get(type(instance))
        if isinstance(instance, ShiftCalendarVersion):
            # A line's calendar is one record whose versions are rows (api/records/calendars.py)
            found[(CALENDARS, instance.id)] = RecordRef(
                kind=CALENDARS, id=instance.id, version=instance.version,
                equipment=instance.equipment, voided=False)
        elif kind is not None:
            found[(kind, instance.id)] = RecordRef(
                kind=kind, id=instance.id, version=instance.version,
                equipment=getattr(instance, "equipment", None),
                voided=instance.voided_at is not None)

    event.listen(db, "loaded_as_persistent", loaded)
    try:
        yield found
    finally:
        event.remove(db, "loaded_as_persistent", loaded)


# --- data files ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DataFile:
    path: Path
    role: str  # factors | gwp | data
    shipped: bool

    @property
    def name(self) -> str:
        """Shipped files by their place in the repository; the user's by their path."""
        return f"api/data/{self.path.name}" if self.shipped else str(self.path)


def data_files(settings: ApiSettings) -> list[DataFile]:
    """The shipped data files, then the user's factor and GWP files, in loading order."""
    roles = {SHIPPED_FACTORS.name: "factors", SHIPPED_REFRIGERANTS.name: "gwp"}
    found = [DataFile(path=p, role=roles.get(p.name, "data"), shipped=True)
             for p in sorted(DATA.glob("*.yaml"))]
    found += [DataFile(path=Path(p), role="factors", shipped=False)
              for p in settings.api_factor_files]
    found += [DataFile(path=Path(p), role="gwp", shipped=False)
              for p in settings.api_refrigerant_files]
    return found


def entries(data: Any) -> dict[str, str]:
    """A digest per entry of a data file: `factors.<id>@<version>`, `gases.<gas>`,
    `baselines.<id>`, `defaults.<carrier>`…, so that a change names what it changed."""
    if not isinstance(data, dict):
        return {"": digest(data)}
    out: dict[str, str] = {}
    for top, value in data.items():
        if isinstance(value, list):
            for i, item in enumerate(value):
                name = f"{top}[{i}]"
                if isinstance(item, dict) and "id" in item:
                    name = f"{top}.{item['id']}" + (f"@{item['version']}" if "version" in item
                                                    else "")
                while name in out:
                    name += "'"
                out[name] = digest(item)
        elif isinstance(value, dict):
            out.update({f"{top}.{k}": digest(v) for k, v in value.items()})
        else:
            out[str(top)] = digest(value)
    return out


def describe_file(file: DataFile) -> dict[str, Any]:
    """A data file as the manifest keeps it: its content hash and its entries' digests."""
    raw = file.path.read_bytes()
    return {"file": file.name, "role": file.role, "shipped": file.shipped,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "entries": entries(YamlDocument(file.path).data)}


# --- code version --------------------------------------------------------------------------

def _sources_sha256() -> str:
    """sha256 over the Python sources that compute figures (`api/`, `telemetry/`): a commit
    does not show uncommitted changes, this does."""
    files = sorted(p for folder in ("api", "telemetry") for p in (REPO / folder).rglob("*.py"))
    return digest([[str(p.relative_to(REPO)), hashlib.sha256(p.read_bytes()).hexdigest()]
                   for p in files])


@cache
def code_version() -> dict[str, str]:
    """The package version, the git commit of the checkout it runs from ("unknown" outside
    one) and a digest of the sources. Read once per process: the code a process runs does not
    change under it."""
    try:
        version = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    commit = "unknown"
    if (REPO / ".git").exists():
        try:
            done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                                  capture_output=True, text=True, timeout=10, check=False)
            if done.returncode == 0 and done.stdout.strip():
                commit = done.stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
    return {"package": PACKAGE, "version": version, "commit": commit,
            "sources_sha256": _sources_sha256()}


# --- figures -------------------------------------------------------------------------------

def _unique(figures: dict[str, Any], name: str) -> str:
    found, n = name, 2
    while found in figures:
        found, n = f"{name}#{n}", n + 1
    return found


def _leaves(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _leaves(f"{prefix}.{k}", v, out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _leaves(f"{prefix}[{i}]", v, out)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        out[prefix] = figure_value(value)


def figures_of(report: Report) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Every figure of the report by name (`<equipment>.<indicator>`, the names of the
    exports, plus the charts' bars, batches and base year), and the factors (id@version)
    each machine's figures used."""
    figures: dict[str, Any] = {}
    used: dict[str, list[str]] = {}
    for m in report.machines:
        eq = m.equipment.id
        factors: set[str] = set()
        for row in rows_of(m.indicators):
            figures[_unique(figures, f"{eq}.{row['indicator']}")] = figure_value(row["value"])
            if row["factor_id"]:
                factors.add(f"{row['factor_id']}@{row['factor_version']}")
        if m.indicators.packaging is not None:
            for mat in m.indicators.packaging.materials:
                _leaves(_unique(figures, f"{eq}.packaging.materials[{mat.material}]"),
                        mat.model_dump(), figures)
                if mat.factor_id:
                    factors.add(f"{mat.factor_id}@{mat.factor_version}")
        for bucket in m.energy_buckets:
            for source, value in sorted(bucket.values.items()):
                figures[f"{eq}.energy_buckets[{bucket.label}].{source}"] = figure_value(value)
        for bucket in m.band_buckets:
            figures[f"{eq}.band_buckets[{bucket.label}].in_band"] = figure_value(
                bucket.values["in_band"])
        for batch in m.batches:
            figures[f"{eq}.batches[{batch.batch}].{batch.unit}"] = figure_value(batch.value)
        if m.base_year is not None:
            _leaves(f"{eq}.base_year", m.base_year.model_dump(mode="json"), figures)
        used[eq] = sorted(factors)
    return figures, used


# --- the whole capture ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Capture:
    """One computation of a report with its witnesses: the report, its manifest, and the
    records it used (kept apart too: the purge guard indexes them)."""

    report: Report
    manifest: dict[str, Any]
    records: list[RecordRef]


def _series(reads: Sequence[SeriesRead]) -> list[dict[str, Any]]:
    return [{"key": r.key, "method": r.method, "measurement": r.measurement,
             "equipment": r.equipment, "sensor": r.sensor, "label": r.label,
             "points": r.points, "sha256": r.sha256}
            for r in sorted(reads, key=lambda r: r.key)]


def capture(*, settings: ApiSettings, registry: SiteRegistry, client: InfluxClient,
            sessions: Callable[[], Session], site: str, period: Period,
            request: dict[str, str], generated_at: datetime) -> Capture:
    """Compute the report of `site` over `period` from today's data, files and records, and
    the manifest of what it rests on. The factor and GWP tables are loaded from the files
    hashed here (not the api's tables of start-up): the manifest states what was used."""
    files = [describe_file(f) for f in data_files(settings)]
    store = RecordingStore(client, registry)
    with sessions() as db, tracking_records(db) as records:
        sources = ReportSources(
            settings=settings, registry=registry, store=store, db=db,
            factors=FactorTable.load(user_files=settings.api_factor_files),
            gwp=GwpTable.load(user_files=settings.api_refrigerant_files),
            references=References.load())
        report = assemble(sources, site=site, period=period, generated_at=generated_at)
    refs = sorted(records.values(), key=lambda r: (r.kind, r.id))
    figures, used = figures_of(report)
    inputs = {
        "files": files,
        "records": [{"kind": r.kind, "id": r.id, "version": r.version,
                     "equipment": r.equipment, "voided": r.voided} for r in refs],
        "series": _series(list(store.reads.values())),
        "settings": {name: canonical(getattr(settings, name))
                     for name in COMPUTATION_SETTINGS},
    }
    manifest: dict[str, Any] = {
        "format": FORMAT, "site": site,
        "period": {"label": period.label, "start": period.start.isoformat(),
                   "end": period.end.isoformat(), "timezone": report.timezone,
                   "request": request},
        "code": code_version(),
        **canonical(inputs),
        "factors_used": used,
        "figures": figures,
    }
    manifest["digests"] = {"inputs": digest(inputs), "figures": digest(figures)}
    return Capture(report=report, manifest=manifest, records=refs)


def manifest_sha256(manifest: dict[str, Any]) -> str:
    """The content hash of a manifest: equal for equal inputs, figures and code."""
    return digest(manifest)

