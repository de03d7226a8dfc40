"""Greenhouse-gas figures: activity × emission factor, scope by scope, never netted.

Scope 1 is fuel burnt on site and refrigerant leaked (kg × GWP of one named assessment
report); scope 2 is purchased electricity, location-based. Each line carries the factor's id,
version and source so that a reader can recompute it by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from api.factors import FactorTable, GwpTable
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
    in_factor_unit = convert(quantity, from_unit=unit, to_unit=factor.activity_unit)
    return EmissionLine(
        scope=1 if scope == 1 else 2, activity=activity, quantity=quantity, quantity_unit=unit,
        factor_id=factor.id, factor_version=factor.version, factor_value=factor.value,
        factor_unit=factor.unit, factor_source=factor.source,
        co2e_kg=in_factor_unit * factor.value)


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
