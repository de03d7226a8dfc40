"""What the evaluation report says, assembled from the same functions as the JSON indicators.

Every figure of the report is a field of an `IndicatorsOut` computed by
`api.accounting.indicators.compute` (the code behind `GET …/indicators`), or the same evidence
(`api.accounting.evidence`) asked over a day or a month of the period for the charts. Nothing is
recomputed by a formula of its own, so the report and the JSON agree to the last digit the
report shows. The base-year comparison is `api.accounting.base_year` (the code of
`GET …/base-year`); avoided emissions are computed under every baseline of a machine's kind,
shipped (`api/data/baselines.yaml`: historical and current) and stored. The inventory totals
come from `ghg.by_scope` when the api gives them, else from the lines by the api's own rule
(`inventory_totals`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from api.accounting.base_year import BaseYearOut, compute_year, view
from api.accounting.baselines import shipped_baselines
from api.accounting.evidence import RAW_LIMIT, Evidence, RawEvidence, RollupEvidence
from api.accounting.factors import FactorTable
from api.accounting.ghg import rss
from api.accounting.gwp import GwpTable
from api.accounting.indicators import IndicatorError, Inputs, compute
from api.accounting.references import References
from api.periods import Period, explicit_period
from api.records.base_years import find
from api.records.live import is_live, live
from api.records.tables import Baseline, Batch
from api.schemas import GhgOut, GhgTotal, IndicatorsOut
from api.settings import ApiSettings
from api.sites import EquipmentInfo, SiteRegistry
from api.store import ReadingsStore
from telemetry.site import EquipmentKind


class ReportError(ValueError):
    """A report that cannot be made: unknown site, or indicators that refuse the period."""


@dataclass(frozen=True, slots=True)
class ReportSources:
    """What the report reads: the api's own state (a request's, or one built by the CLI)."""

    settings: ApiSettings
    registry: SiteRegistry
    store: ReadingsStore
    db: Session
    factors: FactorTable
    gwp: GwpTable
    references: References


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bar group of a time chart: a local day (or month) and its values."""

    label: str
    values: dict[str, float | None]


@dataclass(frozen=True, slots=True)
class BatchEnergy:
    """Specific energy of one batch, from `compute(…, batch_id=…)` over its own span."""

    batch: int
    product: str
    value: float | None
    unit: str


@dataclass(frozen=True, slots=True)
class Provenance:
    """A factor the report's figures used: as `lines[]` of the JSON indicators give it."""

    id: str
    version: str
    value: float
    unit: str
    source: str


@dataclass(frozen=True, slots=True)
class BaselineInfo:
    """What the report says of a baseline beside its avoided figure: shipped ones are
    `historical` or `current` with their source and year; stored ones are the site's own."""

    name: str
    status: str  # historical | current | stored
    description: str
    source: str
    year: int | None


@dataclass(slots=True)
class MachineReport:
    """One machine's part of the report."""

    equipment: EquipmentInfo
    indicators: IndicatorsOut
    energy_buckets: list[Bucket] = field(default_factory=list)
    batches: list[BatchEnergy] = field(default_factory=list)
    band_buckets: list[Bucket] = field(default_factory=list)
    baselines: dict[str, BaselineInfo] = field(default_factory=dict)
    base_year: BaseYearOut | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """The whole evaluation report of a site over a period."""

    site: str
    period: Period
    timezone: str
    bucket: str  # "day" or "month": the width of a bar in the time charts
    machines: list[MachineReport]
    factors: list[Provenance]
    gwp_report: str
    generated_at: datetime


def _evidence(sources: ReportSources, period: Period) -> Evidence:
    # The same choice as the indicator routes: raw readings up to 31 days, rollups beyond.
    if period.duration > RAW_LIMIT:
        return RollupEvidence(store=sources.store)
    settings = sources.settings
    return RawEvidence(store=sources.store,
                       around=timedelta(seconds=settings.boundary_lookaround_s),
                       max_gap=timedelta(seconds=settings.integral_max_gap_s))


def inputs_for(sources: ReportSources, equipment: EquipmentInfo, period: Period) -> Inputs:
    """The indicators' inputs, built exactly as the indicator routes build them."""
    settings = sources.settings
    return Inputs(equipment=equipment, store=sources.store, db=sources.db,
                  factors=sources.factors, gwp=sources.gwp,
                  evidence=_evidence(sources, period), gwp_report=settings.api_gwp_report,
                  references=sources.references, timezone=equipment.timezone,
                  around=timedelta(seconds=settings.boundary_lookaround_s),
                  max_gap=timedelta(seconds=settings.integral_max_gap_s))


def _buckets(period: Period, timezone: str) -> tuple[str, list[Period]]:
    """The period cut at local midnights (≤ 31 days) or at local month starts (longer)."""
    zone = ZoneInfo(timezone)
    monthly = period.duration > RAW_LIMIT
    cuts: list[datetime] = [period.start]
    local = period.start.astimezone(zone).date()
    # Bounded: a period lies within 1970–2200, so at most ~83,000 days or ~2,800 months.
    for _ in range(100_000):
        if monthly:
            local = (local.replace(day=1) + timedelta(days=32)).replace(day=1)
        else:
            local = local + timedelta(days=1)
        # Local midnight, through the zone: a day is 23 or 25 hours when the clocks change.
        moment = datetime(local.year, local.month, local.day, tzinfo=zone)
        if moment.timestamp() >= period.end.timestamp():
            break
        cuts.append(moment)
    cuts.append(period.end)
    kind = "month" if monthly else "day"
    periods = [explicit_period(start=a, end=b) for a, b in pairwise(cuts)]
    return kind, periods


def _label(part: Period, timezone: str, kind: str) -> str:
    first: date = part.start.astimezone(ZoneInfo(timezone)).date()
    return first.strftime("%Y-%m") if kind == "month" else first.strftime("%d/%m")


def _baselines(db: Session, kind: EquipmentKind) -> dict[str, BaselineInfo]:
    """Every baseline of the kind: the shipped ones (historical, then current) and the stored
    ones; a stored baseline of a shipped name is the one used (indicators' rule)."""
    found = {b.name: BaselineInfo(name=b.name, status=b.status, description=b.description,
                                  source=b.source, year=b.year)
             for b in shipped_baselines() if b.equipment_kind == kind.value}
    rows = db.scalars(live(Baseline).filter_by(equipment_kind=kind.value)
                      .order_by(Baseline.name))
    for row in rows:
        found[row.name] = BaselineInfo(name=row.name, status="stored",
                                       description=row.description, source=row.source,
                                       year=None)
    return found


def inventory_totals(ghg: GhgOut) -> list[GhgTotal]:
    """The inventory totals of the scope table, location- and market-based: the api's own
    when `by_scope` carries them, else the same rule as every other total (sum of the lines,
    root-sum-square of their uncertainties, `api.accounting.ghg.rss`); biogenic CO2 is never
    in a total and the two scope 2 views are never added together."""
    given = {t.key: t for t in ghg.by_scope}
    totals = []
    for key, method, fr, en in (
            ("total_location", "location", "Total (scope 2 « location-based »)",
             "Total (scope 2 location-based)"),
            ("total_market", "market", "Total (scope 2 « market-based »)",
             "Total (scope 2 market-based)")):
        if key in given:
            totals.append(given[key])
            continue
        lines = [line for line in ghg.lines if not line.biogenic and line.scope is not None
                 and (line.scope != 2 or (line.scope2_method or "location") == method)]
        co2e = sum(line.co2e_kg for line in lines)
        spread = rss(*(line.uncertainty_kg for line in lines))
        totals.append(GhgTotal(key=key, label_fr=fr, label_en=en, co2e_kg=co2e,
                               uncertainty_kg=spread,
                               uncertainty_pct=100 * spread / co2e if co2e else None,
                               lines=len(lines)))
    return totals


def _base_year(sources: ReportSources, eq: EquipmentInfo) -> BaseYearOut | None:
    """The equipment's base year, frozen and recalculated now side by side (the route's
    code), or None when no base year is set."""
    row = find(sources.db, site=eq.site, equipment=eq.id)
    if row is None:
        return None
    try:
        current = compute_year(sources.db, year=row.year, timezone=eq.timezone,
                               inputs_for=lambda period: inputs_for(sources, eq, period))
    except IndicatorError as exc:
        return view(row, timezone=eq.timezone, current=None, error=str(exc))
    return view(row, timezone=eq.timezone, current=current)


def _indicators(sources: ReportSources, eq: EquipmentInfo, period: Period,
                baselines: dict[str, BaselineInfo]) -> IndicatorsOut:
    """The period's indicators, with avoided emissions against every baseline of the kind
    that the period can be compared with (one `compute` per baseline: the route's code)."""
    inputs = inputs_for(sources, eq, period)
    try:
        out = compute(inputs, period=period)
    except IndicatorError as exc:
        raise ReportError(f"{eq.id}: {exc}") from None
    for name in baselines:
        try:
            with_baseline = compute(inputs, period=period, baseline=name)
        except IndicatorError as exc:
            out.notes.append(f"baseline {name}: {exc}")
            continue
        out.ghg.avoided.extend(with_baseline.ghg.avoided)
    return out


def _energy_buckets(sources: ReportSources, eq: EquipmentInfo, parts: list[Period],
                    kind: str) -> list[Bucket]:
    buckets = []
    for part in parts:
        energy = _evidence(sources, part).energy(eq, part)
        buckets.append(Bucket(label=_label(part, eq.timezone, kind),
                              values={s.source: s.energy_kwh for s in energy.sources}))
    return buckets


def _band_buckets(sources: ReportSources, eq: EquipmentInfo, parts: list[Period],
                  kind: str) -> list[Bucket]:
    sensors = eq.with_role("cabinet_air_temp")
    if not sensors:
        return []
    # The same band, and the same evidence (raw readings or the band_hourly rollup), as the
    # freezer indicator: a month's bar in a year report equals that month's indicator.
    low, high = sources.references.bands()["cabinet_air_temp"]
    buckets = []
    for part in parts:
        share = _evidence(sources, part).time_in_band(eq, sensors[0], part, low, high)
        buckets.append(Bucket(label=_label(part, eq.timezone, kind),
                              values={"in_band": share.share if share else None}))
    return buckets


def _batch_energy(sources: ReportSources, eq: EquipmentInfo,
                  out: IndicatorsOut) -> list[BatchEnergy]:
    ids = (out.dryer.batches if out.dryer else out.freezer.batches if out.freezer else [])
    found = []
    for batch_id in ids:
        batch = sources.db.get(Batch, batch_id)
        if batch is None or not is_live(batch):
            continue
        span = explicit_period(start=batch.started_at, end=batch.ended_at)
        if span.duration > RAW_LIMIT and (span.start_ms % 3_600_000 or span.end_ms % 3_600_000):
            out.notes.append(f"batch {batch_id}: over 31 days and not on whole hours, "
                             "no specific energy")
            continue
        try:
            one = compute(inputs_for(sources, eq, span), period=span, batch_id=batch_id)
        except IndicatorError as exc:
            out.notes.append(f"batch {batch_id}: {exc}")
            continue
        if one.dryer is not None:
            found.append(BatchEnergy(batch=batch_id, product=batch.product,
                                     value=one.dryer.kwh_per_t_water, unit="kWh/t"))
        elif one.freezer is not None:
            found.append(BatchEnergy(batch=batch_id, product=batch.product,
                                     value=one.freezer.kwh_per_kg_frozen, unit="kWh/kg"))
    return found


def assemble(sources: ReportSources, *, site: str, period: Period,
             generated_at: datetime) -> Report:
    """The report of every machine of `site` over `period`."""
    machines = sorted((eq for (s, _), eq in sources.registry.equipment.items() if s == site),
                      key=lambda eq: eq.id)
    if not machines:
        raise ReportError(f"no site {site!r}")
    timezone = machines[0].timezone
    kind, parts = _buckets(period, timezone)
    parts_by_machine: list[MachineReport] = []
    for eq in machines:
        baselines = _baselines(sources.db, eq.kind)
        out = _indicators(sources, eq, period, baselines)
        machine = MachineReport(equipment=eq, indicators=out,
                                energy_buckets=_energy_buckets(sources, eq, parts, kind),
                                baselines=baselines, base_year=_base_year(sources, eq))
        machine.batches = _batch_energy(sources, eq, out)
        if eq.kind is EquipmentKind.FREEZER:
            machine.band_buckets = _band_buckets(sources, eq, parts, kind)
        parts_by_machine.append(machine)
    return Report(site=site, period=period, timezone=timezone, bucket=kind,
                  machines=parts_by_machine, factors=_provenance(sources, parts_by_machine),
                  gwp_report=sources.settings.api_gwp_report, generated_at=generated_at)


def _provenance(sources: ReportSources, machines: list[MachineReport]) -> list[Provenance]:
    """Every factor behind a figure: emission lines carry theirs; avoided emissions and
    materials name an id and version, looked up in the factor table the api loaded."""
    found: dict[tuple[str, str], Provenance] = {}
    named: set[tuple[str, str]] = set()
    for m in machines:
        for line in m.indicators.ghg.lines:
            found[(line.factor_id, line.factor_version)] = Provenance(
                id=line.factor_id, version=line.factor_version, value=line.factor_value,
                unit=line.factor_unit, source=line.factor_source)
        named |= {(a.factor_id, a.factor_version) for a in m.indicators.ghg.avoided}
        if m.indicators.packaging:
            named |= {(mat.factor_id, mat.factor_version)
                      for mat in m.indicators.packaging.materials
                      if mat.factor_id and mat.factor_version}
    for f in sources.factors.factors:
        if (f.id, f.version) in named:
            found[(f.id, f.version)] = Provenance(id=f.id, version=f.version, value=f.value,
                                                  unit=f.unit, source=f.source)
    return [found[key] for key in sorted(found)]
