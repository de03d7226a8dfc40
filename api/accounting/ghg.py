"""Greenhouse-gas figures: activity × emission factor, one line per part, never netted.

Each energy activity gives one line per part of its factor (docs/indicators.md):
- fuel burnt on site: the combustion part (scope 1; for biomass, CH4 and N2O only), the
  upstream part (scope 3 category 3) and, for biomass, its biogenic CO2 (outside the scopes);
- purchased electricity: the generation part location-based (scope 2, ADEME mix) and
  market-based (scope 2, the site's contract or the residual mix), the upstream part (scope 3
  category 3, once: the location-based figure); self-consumed PV is a zero line in both;
- refrigerant leaked: kg × GWP-100 of a named IPCC report (scope 1);
- packaging materials: life-cycle factor (scope 3 category 1).
Where each line key goes (GHG Protocol, ISO 14064-1, BEGES) is data:
api/data/ghg_categories.yaml (api/accounting/categories.py). Each line carries the factor's id,
version, source and uncertainty so that a reader can recompute it by hand.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from api.accounting.categories import Categories, shipped_categories
from api.accounting.factors import EmissionFactor, FactorTable, UnknownFactor, age_note
from api.accounting.gwp import GwpTable
from api.periods import Period
from api.schemas import EmissionLine, GhgOut, GhgTotal
from telemetry.units import convert

# Activity uncertainty by method (half-widths, %; docs/indicators.md "Uncertainty").
# Counter: the maximum permissible error of an active-energy meter of accuracy class B under
# the Measuring Instruments Directive 2014/32/EU, annex V (MI-003), table 2, for
# I_tr ≤ I ≤ I_max at +5…+30 °C: 1 % (class A 2 %, class C 0.5 %); docs/sources.md.
COUNTER_CLASS_PCT = {"A": 2.0, "B": 1.0, "C": 0.5}
DEFAULT_COUNTER_CLASS = "B"
# A quantity read from a paper record (delivery note, weighed top-up, manual index) and typed
# in by hand: a stated default, not a measured figure.
MANUAL_RECORD_PCT = 5.0
_LEGACY_ACTIVITIES = {"fuel_energy": "fuel_oil", "fuel_volume": "fuel_oil"}
_LINE_SCOPES: dict[str, int | None] = {
    "fuel_combustion": 1, "refrigerant_leak": 1, "electricity_location": 2,
    "electricity_market": 2, "energy_upstream": 3, "purchased_materials": 3,
    "biogenic_co2": None}


@dataclass(frozen=True, slots=True)
class SupplyContract:
    """An electricity supply contract, as the market-based scope 2 reads it."""

    id: int
    version: int
    supplier: str
    product: str
    factor_kg_per_kwh: float
    factor_source: str
    guarantees_of_origin: bool
    certificate_ref: str | None


def rss(*parts: float | None) -> float:
    """Root-sum-square of independent parts (None counts as nothing known, 0)."""
    return math.sqrt(sum((p or 0.0) ** 2 for p in parts))


def float32_step(magnitude: float) -> float:
    """The step between consecutive float32 values near `magnitude` (24-bit significand):
    near 12,345 kWh it is 2^(13−23) = 2^-10 ≈ 0.000977 kWh."""
    if magnitude <= 0:
        return 0.0
    return 2.0 ** (math.floor(math.log2(magnitude)) - 23)


def counter_uncertainty_pct(*, increase: float, register_max: float | None = None,
                            data_type: str | None = None,
                            accuracy_class: str | None = None) -> float:
    """A counter's increase: its class's error (MI-003) and, for a float32 register, its
    resolution — each end read to ± half a step, so the increase to ± one step."""
    klass = COUNTER_CLASS_PCT.get((accuracy_class or DEFAULT_COUNTER_CLASS).upper(),
                                  COUNTER_CLASS_PCT[DEFAULT_COUNTER_CLASS])
    resolution = 0.0
    if data_type == "float32" and register_max and increase > 0:
        resolution = 100 * float32_step(register_max) / increase
    return rss(klass, resolution)


def power_integral_uncertainty_pct(*, coverage: float, accuracy_class: str | None = None) -> float:
    """A power integral: the meter's class and the uncovered time. The api does not integrate
    across holes, so a coverage c leaves (1 − c) of the period unknown; at the mean power of
    the covered part that is (1 − c) / c of the figure."""
    klass = COUNTER_CLASS_PCT.get((accuracy_class or DEFAULT_COUNTER_CLASS).upper(),
                                  COUNTER_CLASS_PCT[DEFAULT_COUNTER_CLASS])
    if coverage <= 0:
        return 100.0
    return rss(klass, 100 * (1 - min(coverage, 1.0)) / coverage)


def _line_key(factor: EmissionFactor, scope: int | None, scope2_method: str | None) -> str:
    if factor.part == "combustion":
        return "fuel_combustion"
    if factor.part == "upstream":
        return "energy_upstream"
    if factor.part == "generation":
        return "electricity_market" if scope2_method == "market" else "electricity_location"
    if factor.material is not None or scope == 3:
        return "purchased_materials"
    # A life-cycle factor of an older user file: its own scope says where it goes.
    return "electricity_location" if scope == 2 else "fuel_combustion"


def emission_line(factor: EmissionFactor, *, activity: str, quantity: float, unit: str,
                  scope: int | None = None, span: Period | None = None,
                  share: float | None = None, method: str | None = None,
                  on: date | None = None, scope2_method: str | None = None,
                  activity_uncertainty_pct: float | None = None) -> EmissionLine:
    """`quantity` of an activity times one given factor; `span` and `share` say which part of
    the period (and of the activity) the line covers when the period was split; `on`, the
    period's first day, adds the note when the factor describes an earlier year."""
    in_factor_unit = convert(quantity, from_unit=unit, to_unit=factor.activity_unit)
    key = _line_key(factor, scope, scope2_method)
    if key == "electricity_location":
        scope2_method = "location"
    aged = age_note(factor, on=on) if on else None
    co2e = in_factor_unit * factor.value
    combined = rss(factor.uncertainty_pct, activity_uncertainty_pct)
    return EmissionLine(
        scope=_LINE_SCOPES[key], line=key, part=factor.part, activity=activity,  # type: ignore[arg-type]
        quantity=quantity, quantity_unit=unit, factor_id=factor.id,
        factor_version=factor.version, factor_value=factor.value, factor_unit=factor.unit,
        factor_source=factor.source, co2e_kg=co2e,
        applies_from=span.start if span else None, applies_to=span.end if span else None,
        share=share, method=method, scope2_method=scope2_method,  # type: ignore[arg-type]
        note=aged.en if aged else None, note_fr=aged.fr if aged else None,
        factor_uncertainty_pct=factor.uncertainty_pct,
        activity_uncertainty_pct=activity_uncertainty_pct, uncertainty_pct=combined,
        uncertainty_kg=abs(co2e) * combined / 100)


def biogenic_line(factor: EmissionFactor, *, activity: str, quantity: float, unit: str,
                  span: Period | None = None, share: float | None = None,
                  method: str | None = None,
                  activity_uncertainty_pct: float | None = None) -> EmissionLine | None:
    """The biogenic CO2 of a biomass combustion factor's activity: its own line, outside the
    scopes (None when the factor has none)."""
    if factor.biogenic_co2_per_unit <= 0:
        return None
    kg = convert(quantity, from_unit=unit, to_unit=factor.activity_unit) * (
        factor.biogenic_co2_per_unit)
    combined = rss(factor.uncertainty_pct, activity_uncertainty_pct)
    return EmissionLine(
        scope=None, line="biogenic_co2", part=factor.part, biogenic=True,
        activity=f"{activity} (biogenic CO2)", quantity=quantity, quantity_unit=unit,
        factor_id=factor.id, factor_version=factor.version,
        factor_value=factor.biogenic_co2_per_unit, factor_unit=f"kgCO2/{factor.activity_unit}",
        factor_source=factor.source, co2e_kg=kg,
        applies_from=span.start if span else None, applies_to=span.end if span else None,
        share=share, method=method, factor_uncertainty_pct=factor.uncertainty_pct,
        activity_uncertainty_pct=activity_uncertainty_pct, uncertainty_pct=combined,
        uncertainty_kg=kg * combined / 100)


def activity_emissions(table: FactorTable, *, carrier: str, activity: str, quantity: float,
                       unit: str, on: date, method: str | None = None,
                       activity_uncertainty_pct: float | None = None) -> list[EmissionLine]:
    """Every part of one activity (combustion or generation, upstream, biogenic CO2) with the
    carrier's default factors valid on `on`."""
    lines: list[EmissionLine] = []
    for part in table.parts(carrier):
        factor = table.get(table.default_id(carrier, part, unit=unit), on=on)
        lines.append(emission_line(factor, activity=activity, quantity=quantity, unit=unit,
                                   method=method, on=on,
                                   activity_uncertainty_pct=activity_uncertainty_pct))
        biogenic = biogenic_line(factor, activity=activity, quantity=quantity, unit=unit,
                                 method=method,
                                 activity_uncertainty_pct=activity_uncertainty_pct)
        if biogenic is not None:
            lines.append(biogenic)
    return lines


def activity_emission(
    table: FactorTable,
    *,
    activity: str,
    quantity: float,
    unit: str,
    on: date,
    factor_id: str | None = None,
    default_for: str,
    scope: int | None = None,
    method: str | None = None,
) -> EmissionLine:
    """One measured activity (e.g. 500 L of fuel oil) times its main factor on `on`: the
    named one, else the carrier's first default part (combustion or generation) in a unit
    that converts from `unit`. `activity_emissions` gives every part."""
    carrier = _LEGACY_ACTIVITIES.get(default_for, default_for)
    if factor_id:
        factor = table.get(factor_id, on=on)
    else:
        part = next(iter(table.parts(carrier)), None)
        if part is None:
            raise UnknownFactor(f"no default emission factor for {carrier!r}")
        factor = table.get(table.default_id(carrier, part, unit=unit), on=on)
    uncertainty = MANUAL_RECORD_PCT if method == "manual_record" else None
    return emission_line(factor, activity=activity, quantity=quantity, unit=unit, scope=scope,
                         method=method, on=on, activity_uncertainty_pct=uncertainty)


def factor_spans(table: FactorTable, *, factor_id: str, period: Period,
                 timezone: str) -> list[tuple[Period, EmissionFactor]]:
    """The consecutive parts of `period` over each of which one version of a factor applies.

    Validity dates are local days (the site's zone), so the cuts are the local midnights at
    which a version of the factor starts or stops being valid; parts with the same version
    are merged. Raises UnknownFactor if some part has no valid version.
    """
    zone = ZoneInfo(timezone)
    first = period.start.astimezone(zone).date()
    last = (period.end - timedelta(microseconds=1)).astimezone(zone).date()
    days = sorted({d for f in table.factors if f.id == factor_id
                   for d in (f.valid_from, f.valid_to) if d is not None and first < d <= last})
    cuts = [period.start, *(datetime.combine(d, time(), zone).astimezone(UTC) for d in days),
            period.end]
    spans: list[tuple[Period, EmissionFactor]] = []
    for a, b in itertools.pairwise(cuts):
        factor = table.get(factor_id, on=a.astimezone(zone).date())
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


def pv_self_consumed(kwh: dict[str, float]) -> float | None:
    """PV produced and used on site (production − export), when PV is metered."""
    if "pv" not in kwh:
        return None
    return max(0.0, kwh["pv"] - kwh.get("grid_export", 0.0))


def pv_lines(kwh: float, *, method: str | None,
             span: Period | None = None) -> list[EmissionLine]:
    """Self-consumed PV: zero in location- and market-based scope 2, shown as its own lines."""
    return [EmissionLine(
        scope=2, line=key, part="generation", activity="pv_self_consumed",
        quantity=kwh, quantity_unit="kWh", factor_id="pv-self-consumed",
        factor_version="-", factor_value=0.0, factor_unit="kgCO2e/kWh",
        factor_source="PV autoconsommé / self-consumed PV: nothing purchased, zero emission "
                      "(exported PV is never credited)",
        co2e_kg=0.0, applies_from=span.start if span else None,
        applies_to=span.end if span else None, method=method,
        scope2_method=how, uncertainty_pct=0.0, uncertainty_kg=0.0)
        for key, how in _PV_VIEWS]


_PV_VIEWS: tuple[tuple[str, Literal["location", "market"]], ...] = (
    ("electricity_location", "location"), ("electricity_market", "market"))


def contract_line(contract: SupplyContract, *, activity: str, kwh: float, span: Period,
                  share: float | None, method: str | None,
                  activity_uncertainty_pct: float | None) -> EmissionLine:
    """Market-based scope 2 over the part of the period a supply contract covers."""
    co2e = kwh * contract.factor_kg_per_kwh
    combined = rss(activity_uncertainty_pct)
    goo = (f", guarantees of origin {contract.certificate_ref or 'yes'}"
           if contract.guarantees_of_origin else "")
    return EmissionLine(
        scope=2, line="electricity_market", part="generation", activity=activity,
        quantity=kwh, quantity_unit="kWh", factor_id=f"contract-{contract.id}",
        factor_version=str(contract.version), factor_value=contract.factor_kg_per_kwh,
        factor_unit="kgCO2e/kWh",
        factor_source=f"{contract.supplier}, {contract.product}: {contract.factor_source}{goo}",
        co2e_kg=co2e, applies_from=span.start, applies_to=span.end, share=share,
        method=method, scope2_method="market", activity_uncertainty_pct=activity_uncertainty_pct,
        uncertainty_pct=combined, uncertainty_kg=co2e * combined / 100)


def refrigerant_emission(
    gwp: GwpTable, *, refrigerant: str, leaked_kg: float, report: str
) -> EmissionLine:
    """Refrigerant leaked (best estimate: mass topped up) × its GWP-100 in `report`."""
    value, source = gwp.gwp(refrigerant, report=report)
    co2e = leaked_kg * value
    return EmissionLine(
        scope=1, line="refrigerant_leak", activity=f"refrigerant leak {refrigerant}",
        quantity=leaked_kg, quantity_unit="kg",
        factor_id=f"gwp100-{report.lower()}-{refrigerant.lower()}", factor_version=report,
        factor_value=value, factor_unit="kgCO2e/kg", factor_source=source, co2e_kg=co2e,
        gwp_report=report, method="record", activity_uncertainty_pct=MANUAL_RECORD_PCT,
        uncertainty_pct=MANUAL_RECORD_PCT, uncertainty_kg=co2e * MANUAL_RECORD_PCT / 100)


def classify(line: EmissionLine, categories: Categories) -> EmissionLine:
    """The line with its GHG Protocol, ISO 14064-1 and BEGES places from the category table."""
    key = line.line or ("refrigerant_leak" if line.activity.startswith("refrigerant")
                        else _LINE_KEY_OF_SCOPE.get(line.scope or 0, "biogenic_co2"))
    row = categories.of(key)
    return line.model_copy(update={
        "line": key, "scope": row.ghg_protocol.scope, "ghg_protocol_scope": row.ghg_protocol.scope,
        "ghg_protocol_category": row.ghg_protocol.category,
        "iso_category": row.iso14064.category, "iso_category_name_fr": row.iso14064.name_fr,
        "iso_category_name_en": row.iso14064.name_en, "beges_poste": row.beges.poste})


_LINE_KEY_OF_SCOPE = {1: "fuel_combustion", 2: "electricity_location", 3: "purchased_materials"}


def _total(key: str, fr: str, en: str, lines: Sequence[EmissionLine]) -> GhgTotal:
    co2e = sum(line.co2e_kg for line in lines)
    u_kg = rss(*(line.uncertainty_kg for line in lines))
    return GhgTotal(key=key, label_fr=fr, label_en=en, co2e_kg=co2e, uncertainty_kg=u_kg,
                    uncertainty_pct=100 * u_kg / co2e if co2e else None, lines=len(lines))


def summarise(lines: Sequence[EmissionLine], *, gwp_report: str,
              categories: Categories | None = None) -> GhgOut:
    """Scope and ISO-category totals of a set of lines, each with its root-sum-square
    uncertainty (avoided emissions are added by the caller, apart). Scope 2 location and
    market are two views of the same kWh: never added together."""
    table = categories or shipped_categories()
    done = [classify(line, table) for line in lines]
    s1 = [x for x in done if x.scope == 1]
    s2l = [x for x in done if x.scope == 2 and x.scope2_method != "market"]
    s2m = [x for x in done if x.scope == 2 and x.scope2_method == "market"]
    s3 = [x for x in done if x.scope == 3]
    by_scope = [
        _total("scope1", "Scope 1 (émissions directes)", "Scope 1 (direct)", s1),
        _total("scope2_location", "Scope 2, méthode « location-based »",
               "Scope 2, location-based", s2l),
        _total("scope2_market", "Scope 2, méthode « market-based »", "Scope 2, market-based",
               s2m)]
    for category in sorted({x.ghg_protocol_category for x in s3 if x.ghg_protocol_category}):
        picked = [x for x in s3 if x.ghg_protocol_category == category]
        by_scope.append(_total(f"scope3_cat{category}", f"Scope 3, catégorie {category}",
                               f"Scope 3, category {category}", picked))
    by_scope.append(_total("scope3", "Scope 3", "Scope 3", s3))
    # ISO categories: the location-based view of imported electricity (the market-based
    # figure is the scope 2 market line of by_scope), nothing outside the scopes.
    iso_lines = [x for x in done if x.scope2_method != "market" and not x.biogenic
                 and x.iso_category is not None]
    by_iso = []
    for category in sorted({x.iso_category for x in iso_lines if x.iso_category}):
        picked = [x for x in iso_lines if x.iso_category == category]
        by_iso.append(_total(f"iso{category}",
                             f"Catégorie {category} : {picked[0].iso_category_name_fr}",
                             f"Category {category}: {picked[0].iso_category_name_en}", picked))
    location = sum(x.co2e_kg for x in s2l)
    return GhgOut(
        scope1_co2e_kg=sum(x.co2e_kg for x in s1), scope2_co2e_kg=location,
        scope2_location_co2e_kg=location, scope2_market_co2e_kg=sum(x.co2e_kg for x in s2m),
        scope3_co2e_kg=sum(x.co2e_kg for x in s3),
        biogenic_co2_kg=sum(x.co2e_kg for x in done if x.biogenic),
        by_scope=by_scope, by_iso_category=by_iso, gwp_report=gwp_report, lines=done)
