"""Greenhouse-gas figures: activity × emission factor, scope by scope, never netted.

Scope 1 is fuel burnt on site and refrigerant leaked (kg × GWP of one named assessment
report); scope 2 is purchased electricity, location-based. Each line carries the factor's id,
version and source so that a reader can recompute it by hand.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from api.accounting.factors import EmissionFactor, FactorTable, GwpTable, UnknownFactor
from api.periods import Period
from api.schemas import EmissionLine, GhgOut
from telemetry.units import convert


def activity_emission(
    table: FactorTable,
    *,
    activity: str,
    quantity: float,
    unit: str,
    on: date,
    factor_id: str | None = None,
    default_for: str,
    scope: int,
) -> EmissionLine:
    """One measured activity (e.g. 120 kWh of grid import) times its factor on `on`."""
    factor = table.get(factor_id, on=on) if factor_id else table.for_activity(default_for, on=on)
    return emission_line(factor, activity=activity, quantity=quantity, unit=unit, scope=scope)


def emission_line(factor: EmissionFactor, *, activity: str, quantity: float, unit: str,
                  scope: int, span: Period | None = None,
                  share: float | None = None) -> EmissionLine:
    """`quantity` of an activity times one given factor; `span` and `share` say which part of
    the period (and of the activity) the line covers when the period was split."""
    in_factor_unit = convert(quantity, from_unit=unit, to_unit=factor.activity_unit)
    return EmissionLine(
        scope=1 if scope == 1 else 2, activity=activity, quantity=quantity, quantity_unit=unit,
        factor_id=factor.id, factor_version=factor.version, factor_value=factor.value,
        factor_unit=factor.unit, factor_source=factor.source,
        co2e_kg=in_factor_unit * factor.value,
        applies_from=span.start if span else None, applies_to=span.end if span else None,
        share=share)


def factor_spans(table: FactorTable, *, factor_id: str | None, default_for: str,
                 period: Period, timezone: str) -> list[tuple[Period, EmissionFactor]]:
    """The consecutive parts of `period` over each of which one version of a factor applies.

    Validity dates are local days (the site's zone), so the cuts are the local midnights at
    which a version of the factor starts or stops being valid; parts with the same version
    are merged. Raises UnknownFactor if some part has no valid version.
    """
    fid = factor_id or table.defaults.get(default_for)
    if fid is None:
        raise UnknownFactor(f"no default emission factor for {default_for!r}")
    zone = ZoneInfo(timezone)
    first = period.start.astimezone(zone).date()
    last = (period.end - timedelta(microseconds=1)).astimezone(zone).date()
    days = sorted({d for f in table.factors if f.id == fid for d in (f.valid_from, f.valid_to)
                   if d is not None and first < d <= last})
    cuts = [period.start, *(datetime.combine(d, time(), zone).astimezone(UTC) for d in days),
            period.end]
    spans: list[tuple[Period, EmissionFactor]] = []
    for a, b in itertools.pairwise(cuts):
        factor = table.get(fid, on=a.astimezone(zone).date())
        if spans and spans[-1][1] == factor:
            a = spans.pop()[0].start
        spans.append((Period(start=a, end=b, label=f"{a.isoformat()}/{b.isoformat()}"),
                      factor))
    return spans


def purchased_electricity(kwh: dict[str, float]) -> tuple[str, str, float] | None:
    """(activity, energy source, kWh) of the electricity bought: the grid import where it is
    metered, else everything the equipment used at its own feeder (no grid meter: all of it
    was bought). Exported PV is not credited."""
    if "grid_import" in kwh:
        return "grid_import_energy", "grid_import", kwh["grid_import"]
    if "electricity" in kwh:
        return "electric_energy", "electricity", kwh["electricity"]
    return None


def refrigerant_emission(
    gwp: GwpTable, *, refrigerant: str, leaked_kg: float, report: str
) -> EmissionLine:
    """Refrigerant leaked (best estimate: mass topped up) × its GWP-100 in `report`."""
    value, source = gwp.gwp(refrigerant, report=report)
    return EmissionLine(
        scope=1, activity=f"refrigerant leak {refrigerant}", quantity=leaked_kg,
        quantity_unit="kg", factor_id=f"gwp100-{report.lower()}-{refrigerant.lower()}",
        factor_version=report, factor_value=value, factor_unit="kgCO2e/kg",
        factor_source=source, co2e_kg=leaked_kg * value)


def summarise(lines: Sequence[EmissionLine], *, gwp_report: str) -> GhgOut:
    """Scope totals of a set of lines (avoided emissions are added by the caller, apart)."""
    return GhgOut(
        scope1_co2e_kg=sum(line.co2e_kg for line in lines if line.scope == 1),
        scope2_co2e_kg=sum(line.co2e_kg for line in lines if line.scope == 2),
        gwp_report=gwp_report, lines=list(lines))
