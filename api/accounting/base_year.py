"""Base years (ISO 14064-1:2018 §6.4): per site and equipment, one calendar year whose figures
are frozen when an admin sets it, and compared later with a recalculation of the same year.

The frozen snapshot keeps what the figures rested on — the factor ids and versions of every
emission line, the production records (ids, versions, voided or not) of the year, the energy
by source — so that when a figure of the base year moves, the reason can be proved by
comparing the two snapshots: a newer version of a factor, a record edited, voided, added or
removed, readings that changed. The original is never overwritten; recalculations are shown
beside it and, when an admin records one, appended to `recalculations`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import func, select, type_coerce
from sqlalchemy.orm import Session

from api.accounting.indicators import Inputs, compute
from api.periods import Calendar, Period, calendar_period
from api.records.base_years import BaseYear
from api.records.tables import Base
from api.schemas import IndicatorsOut

RULE = ("ISO 14064-1:2018 §6.4: the base-year inventory is recalculated when a factor or an "
        "activity datum of the base year is corrected; the original figures stay beside it.")

# Relative change under which a figure has not moved (float noise of a sum in another order).
_SAME = 1e-9

# The record tables whose rows feed a period's figures: (time columns, the first not empty
# is the row's moment; how it selects rows). "within": the moment lies in the period;
# "before_end": it took effect before the end (lots and contracts stay in force). A manual
# meter index read outside the year, though it may bound it, is not tracked. Tables absent
# from the metadata are skipped.
_RECORDS: dict[str, tuple[tuple[str, ...], Literal["within", "before_end"]]] = {
    "batches": (("ended_at",), "within"),
    "refrigerant_top_ups": (("at",), "within"),
    "material_lots": (("received_at",), "before_end"),
    "manual_activities": (("delivered_at", "read_at"), "within"),
    "electricity_contracts": (("valid_from",), "before_end"),
}
_AMOUNTS = {"co2e_kg", "uncertainty_kg", "uncertainty_pct", "co2_kg"}


class Snapshot(BaseModel):
    """A year's figures and what they rest on."""

    computed_at: datetime
    figures: dict[str, float] = Field(
        description="figure path → value: energy.<source>_kwh, ghg.<total>, "
                    "ghg.by_scope[…].co2e_kg, ghg.by_iso_category[…].co2e_kg")
    factors: list[tuple[str, str]] = Field(description="(factor id, version) of every line")
    figure_factors: dict[str, list[str]] = Field(
        default_factory=dict, description="GHG figure → the factor ids of the lines it sums")
    records: dict[str, dict[str, dict[str, Any]]] = Field(
        description="record table → id → {version, voided}")
    gwp_report: str
    notes: list[str] = Field(default_factory=list)


class Reason(BaseModel):
    """Something that changed since the snapshot and can move a figure."""

    kind: Literal["factor", "record", "readings"]
    subject: str = Field(description="factor id, `table id`, or energy source")
    frozen: str | None = Field(description="what the snapshot had (version, value)")
    current: str | None = Field(description="what the recalculation has")
    text: str


class FigureChange(BaseModel):
    figure: str
    frozen: float | None
    recalculated: float | None
    change_pct: float | None
    reasons: list[str] = Field(description="`text` of each reason that can move this figure")


class BaseYearOut(BaseModel):
    site: str
    equipment: str
    year: int
    start: datetime
    end: datetime
    set_by: str
    set_at: datetime
    rule: str = RULE
    frozen: Snapshot = Field(description="as computed when the base year was set; never changed")
    recalculated: Snapshot | None = Field(description="the same year computed today")
    recalculation_error: str | None = None
    changes: list[FigureChange] = Field(description="every figure that moved, with its reasons")
    reasons: list[Reason]
    recalculations: list[dict[str, Any]] = Field(
        description="recalculations recorded by an admin, oldest first")


class BaseYearIn(BaseModel):
    year: int = Field(ge=1971, le=2199, description="a calendar year, in the site's time zone")


class BaseYearError(ValueError):
    """A base year that cannot be set (a year not over yet, indicators refused)."""


def year_period(year: int, *, timezone: str) -> Period:
    """The calendar year in the site's zone (local midnights)."""
    return calendar_period(kind=Calendar.YEAR, containing=date(year, 6, 1), timezone=timezone)


def figures_of(out: IndicatorsOut) -> dict[str, float]:
    """The figures a base year keeps: energy by source, every GHG total, by scope and by ISO
    category, exactly as the indicators give them."""
    found = {f"energy.{s.source}_kwh": s.energy_kwh for s in out.energy.sources}
    ghg = out.ghg.model_dump()
    for key, value in ghg.items():
        if (isinstance(value, int | float) and not isinstance(value, bool)
                and key.endswith(("_co2e_kg", "_co2_kg"))):
            found[f"ghg.{key}"] = float(value)
    for listed in ("by_scope", "by_iso_category"):
        for item in ghg.get(listed) or []:
            ident = item.get("key") or ",".join(
                f"{k}={v}" for k, v in item.items()
                if k not in _AMOUNTS and isinstance(v, str | int) and not isinstance(v, bool))
            if isinstance(item.get("co2e_kg"), int | float):
                found[f"ghg.{listed}[{ident}].co2e_kg"] = float(item["co2e_kg"])
    return found


def _scope_key(line: dict[str, Any]) -> set[str]:
    """The totals a line counts in (the keys of `by_scope` and `by_iso_category`)."""
    if line.get("biogenic") or line.get("scope") is None:
        return {"biogenic"}
    scope, method = line.get("scope"), line.get("scope2_method")
    keys = {f"scope{scope}"}
    if scope == 2:
        keys.add(f"scope2_{method or 'location'}")
        if method == "market":
            keys.discard("scope2")
    if scope == 3 and line.get("ghg_protocol_category") is not None:
        keys.add(f"scope3_cat{line['ghg_protocol_category']}")
    if line.get("iso_category") is not None and method != "market":
        keys.add(f"iso{line['iso_category']}")
    return keys


_TOTALS = {"scope1_co2e_kg": "scope1", "scope2_co2e_kg": "scope2_location",
           "scope2_location_co2e_kg": "scope2_location", "scope2_market_co2e_kg": "scope2_market",
           "scope3_co2e_kg": "scope3", "biogenic_co2_kg": "biogenic"}


# The kind of emission line each record table feeds (api/data/ghg_categories.yaml keys, and
# the `method` of lines from manual records): an edited record is a reason for those totals.
_RECORD_LINES = {"refrigerant_top_ups": {"refrigerant_leak"},
                 "material_lots": {"purchased_materials"},
                 "electricity_contracts": {"electricity_market"},
                 "manual_activities": {"manual_record"}}


def figure_factors(out: IndicatorsOut, figures: dict[str, float]) -> dict[str, list[str]]:
    """For each GHG figure, the factor ids of the lines it sums and their kinds (`line:…`,
    `method:…`): a factor's new version, or an edited record, is a reason for those figures
    only."""
    lines = [({line.factor_id, f"line:{line.model_dump().get('line')}",
               f"method:{line.model_dump().get('method')}"}, _scope_key(line.model_dump()))
             for line in out.ghg.lines]
    found: dict[str, list[str]] = {}
    for figure in figures:
        if not figure.startswith("ghg."):
            continue
        name = figure.removeprefix("ghg.")
        if "[" in name:
            total: str | None = name[name.index("[") + 1:name.index("]")]
        else:
            total = _TOTALS.get(name)
        if total is not None:
            found[figure] = sorted({u for uses, keys in lines if total in keys for u in uses})
    return found


def _records(db: Session, *, site: str, equipment: str, period: Period
             ) -> dict[str, dict[str, dict[str, Any]]]:
    """Every record of the year that can feed its figures, voided ones included (a void is a
    reason to show), with its version (1 where records carry none)."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for name, (names, rule) in _RECORDS.items():
        table = Base.metadata.tables.get(name)
        if table is None or not all(n in table.c for n in names):
            continue
        columns = table.c
        query = select(table).where(columns.site == site)
        if "equipment" in columns:
            query = query.where(columns.equipment == equipment)
        # type_coerce, not CAST: the bound moments go through UtcDateTime, SQL is unchanged.
        moment = (columns[names[0]] if len(names) == 1 else type_coerce(
            func.coalesce(*(columns[n] for n in names)), columns[names[0]].type))
        query = query.where(moment < period.end)
        if rule == "within":
            query = query.where(moment >= period.start)
        rows = db.execute(query).mappings()
        found[name] = {str(row["id"]): {"version": int(row.get("version") or 1),
                                        "voided": row.get("voided_at") is not None}
                       for row in rows}
    return found


def snapshot(db: Session, *, out: IndicatorsOut, period: Period) -> Snapshot:
    """The figures of `out` (the year's indicators) and what they rest on."""
    factors = sorted({(line.factor_id, line.factor_version) for line in out.ghg.lines})
    figures = figures_of(out)
    return Snapshot(computed_at=datetime.now(UTC), figures=figures, factors=factors,
                    figure_factors=figure_factors(out, figures),
                    records=_records(db, site=out.site, equipment=out.equipment, period=period),
                    gwp_report=out.ghg.gwp_report, notes=list(out.notes))


def compute_year(db: Session, *, year: int, timezone: str,
                 inputs_for: Callable[[Period], Inputs]) -> Snapshot:
    """The year's indicators computed now, through the same code as `GET …/indicators`."""
    period = year_period(year, timezone=timezone)
    return snapshot(db, out=compute(inputs_for(period), period=period), period=period)


def _versions(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    by_id: dict[str, list[str]] = {}
    for fid, version in pairs:
        by_id.setdefault(fid, []).append(version)
    return {fid: sorted(v) for fid, v in by_id.items()}


def reasons_between(frozen: Snapshot, current: Snapshot) -> list[Reason]:
    """What changed between two snapshots of one year that can move its figures."""
    reasons: list[Reason] = []
    before, after = _versions(frozen.factors), _versions(current.factors)
    for fid in sorted(before.keys() | after.keys()):
        old, new = before.get(fid), after.get(fid)
        if old == new:
            continue
        was, now = ", ".join(old or []) or None, ", ".join(new or []) or None
        reasons.append(Reason(kind="factor", subject=fid, frozen=was, current=now, text=(
            f"factor {fid}: version {was} → {now}" if was and now else
            f"factor {fid} no longer used (was version {was})" if was else
            f"factor {fid} version {now} now used")))
    for table in sorted(frozen.records.keys() | current.records.keys()):
        old_rows, new_rows = frozen.records.get(table, {}), current.records.get(table, {})
        for rid in sorted(old_rows.keys() | new_rows.keys(), key=int):
            old_row, new_row = old_rows.get(rid), new_rows.get(rid)
            subject = f"{table} {rid}"
            if old_row == new_row:
                continue
            if old_row is None:
                text = f"{subject}: recorded since the base year was set"
            elif new_row is None:
                text = f"{subject}: deleted since the base year was set"
            elif new_row["voided"] and not old_row["voided"]:
                text = f"{subject}: voided since the base year was set"
            else:
                text = (f"{subject}: edited, version {old_row['version']} → "
                        f"{new_row['version']}")
            reasons.append(Reason(
                kind="record", subject=subject, text=text,
                frozen=None if old_row is None else _record_state(old_row),
                current=None if new_row is None else _record_state(new_row)))
    energy = sorted(k for k in frozen.figures.keys() | current.figures.keys()
                    if k.startswith("energy."))
    for key in energy:
        old_kwh, new_kwh = frozen.figures.get(key), current.figures.get(key)
        if _moved(old_kwh, new_kwh):
            source = key.removeprefix("energy.").removesuffix("_kwh")
            reasons.append(Reason(
                kind="readings", subject=source, frozen=_kwh(old_kwh), current=_kwh(new_kwh),
                text=f"readings of {source}: {_kwh(old_kwh)} → {_kwh(new_kwh)}"))
    return reasons


def _record_state(row: dict[str, Any]) -> str:
    return f"version {row['version']}" + (", voided" if row["voided"] else "")


def _kwh(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g} kWh"


def _moved(old: float | None, new: float | None) -> bool:
    if old is None or new is None:
        return old is not new
    return abs(new - old) > _SAME * max(1.0, abs(old))


def changes_between(frozen: Snapshot, current: Snapshot,
                    reasons: list[Reason]) -> list[FigureChange]:
    """Every figure that moved, each with the reasons that can move it: an energy figure
    moves with its readings only; a GHG figure with factors, records and readings."""
    found = []
    for key in sorted(frozen.figures.keys() | current.figures.keys()):
        old, new = frozen.figures.get(key), current.figures.get(key)
        if not _moved(old, new):
            continue
        if key.startswith("energy."):
            source = key.removeprefix("energy.").removesuffix("_kwh")
            why = [r.text for r in reasons if r.kind == "readings" and r.subject == source]
        else:
            # A factor is a reason for the figures whose lines use it (then or now); records
            # and readings for every GHG figure.
            uses = ({*frozen.figure_factors.get(key, []), *current.figure_factors.get(key, [])}
                    if key in frozen.figure_factors or key in current.figure_factors else None)
            why = [r.text for r in reasons if uses is None or _applies(r, uses)]
        pct = None if old is None or new is None or not old else 100 * (new - old) / old
        found.append(FigureChange(figure=key, frozen=old, recalculated=new, change_pct=pct,
                                  reasons=why or ["no provable reason: neither a factor, a "
                                                  "record nor the readings changed (the "
                                                  "method may have)"]))
    return found


def _applies(reason: Reason, uses: set[str]) -> bool:
    if reason.kind == "factor":
        return reason.subject in uses
    if reason.kind == "record":
        table = reason.subject.split(" ")[0]
        kinds = _RECORD_LINES.get(table)
        return kinds is not None and any(
            f"line:{k}" in uses or f"method:{k}" in uses for k in kinds)
    return True


def view(row: BaseYear, *, timezone: str, current: Snapshot | None,
         error: str | None = None) -> BaseYearOut:
    """The base year as the api and the report show it: frozen and recalculated side by
    side, with what moved and why."""
    period = year_period(row.year, timezone=timezone)
    frozen = Snapshot.model_validate(row.frozen)
    reasons = reasons_between(frozen, current) if current is not None else []
    return BaseYearOut(
        site=row.site, equipment=row.equipment, year=row.year, start=period.start,
        end=period.end, set_by=row.set_by, set_at=row.set_at, frozen=frozen,
        recalculated=current, recalculation_error=error,
        changes=changes_between(frozen, current, reasons) if current is not None else [],
        reasons=reasons, recalculations=list(row.recalculations or []))
