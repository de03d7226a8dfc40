"""The indicators of one equipment over one period: energy by source, GHG by scope, avoided
emissions against a baseline, and the equipment's own figures (dryer, freezer, packaging line).

Every figure comes with what it rests on: sensors and method (energy), factor ids, versions and
sources (GHG), batch ids (production). What cannot be computed is left empty and said in
`notes`, never guessed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.accounting import airside
from api.accounting.baselines import ShippedBaseline, shipped_baseline
from api.accounting.calendar import availability, line_states, planned_time
from api.accounting.categories import Categories, shipped_categories
from api.accounting.eco2mix import SOURCE
from api.accounting.evidence import RAW_LIMIT, Evidence, RollupEvidence
from api.accounting.factors import EmissionFactor, FactorTable, Part, UnknownFactor
from api.accounting.ghg import (
    SupplyContract,
    biogenic_line,
    contract_line,
    counter_uncertainty_pct,
    emission_line,
    factor_spans,
    power_integral_uncertainty_pct,
    purchased_electricity,
    pv_lines,
    pv_self_consumed,
    refrigerant_emission,
    summarise,
)
from api.accounting.gwp import GwpTable
from api.accounting.manual import manual_emission_lines
from api.accounting.references import References
from api.accounting.states import TimeShare, first_at_or_below
from api.periods import Period, explicit_period
from api.records import calendars
from api.records.contracts import ElectricityContract
from api.records.live import live
from api.records.tables import Baseline, Batch, MaterialLot, RefrigerantTopUp
from api.schemas import (
    AirSideOut,
    AvoidedOut,
    CoreFreezing,
    DryerOut,
    EmissionLine,
    EnergyBySourceOut,
    FreezerOut,
    GhgOut,
    GridIntensityOut,
    IndicatorsOut,
    MaterialOut,
    PackagingOut,
    PlannedTimeOut,
    SourceEnergy,
)
from api.sites import EquipmentInfo, SensorInfo
from api.store import ReadingsStore
from telemetry.site import EquipmentKind
from telemetry.units import convert


class IndicatorError(ValueError):
    """A request the indicators cannot answer (unknown baseline, factor missing)."""


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything the indicators read, gathered by the route."""

    equipment: EquipmentInfo
    store: ReadingsStore
    evidence: Evidence  # raw readings, or hourly rollups for long periods
    db: Session
    factors: FactorTable
    gwp: GwpTable
    gwp_report: str
    references: References
    timezone: str
    around: timedelta
    max_gap: timedelta
    categories: Categories | None = None  # None: api/data/ghg_categories.yaml


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _per(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def compute(
    inputs: Inputs, *, period: Period, batch_id: int | None = None,
    campaign_id: int | None = None, baseline: str | None = None,
    nominal_rate_upm: float | None = None,
) -> IndicatorsOut:
    """All indicators of `inputs.equipment` over `period`; the production figures count the
    batches ending in it, or one batch, or a campaign's batches."""
    eq = inputs.equipment
    notes: list[str] = []
    energy = inputs.evidence.energy(eq, period)
    for source in energy.missing:
        notes.append(f"energy source {source}: sensors declared but no usable reading")
    on = period.start.astimezone(ZoneInfo(inputs.timezone)).date()
    batches = _batches(inputs, period=period, batch_id=batch_id, campaign_id=campaign_id)
    lines = _emission_lines(inputs, energy=energy, period=period, notes=notes)
    materials: list[tuple[MaterialOut, EmissionLine | None]] = []
    if eq.kind is EquipmentKind.PACKAGING:
        materials = _materials(inputs, period=period, on=on, notes=notes)
        lines += [line for _, line in materials if line is not None]
    ghg = summarise(lines, gwp_report=inputs.gwp_report,
                    categories=inputs.categories or shipped_categories())
    for aged in dict.fromkeys(f"{x.factor_id}: {x.note} / {x.note_fr}"
                              for x in ghg.lines if x.note):
        notes.append(aged)
    out = IndicatorsOut(site=eq.site, equipment=eq.id, kind=eq.kind.value, period=period.label,
                        start=period.start, end=period.end, energy=energy, ghg=ghg, notes=notes)
    kwh = {s.source: s.energy_kwh for s in energy.sources}
    if eq.kind is EquipmentKind.DRYER:
        out.dryer = _dryer(inputs, kwh=kwh, batches=batches, ghg=ghg, period=period,
                           notes=notes)
    elif eq.kind is EquipmentKind.FREEZER:
        out.freezer = _freezer(inputs, kwh=kwh, batches=batches, ghg=ghg, period=period,
                               notes=notes)
    elif eq.kind is EquipmentKind.PACKAGING:
        out.packaging = _packaging(inputs, kwh=kwh, period=period,
                                   materials=[m for m, _ in materials],
                                   nominal_rate_upm=nominal_rate_upm, notes=notes)
    if baseline is not None:
        ghg.avoided.append(_avoided(inputs, name=baseline, out=out, on=on))
    ghg.grid_intensity = _grid_intensity(inputs, period=period, kwh=kwh, notes=notes)
    # Validation copied the list into `out`: the notes added since would be lost.
    out.notes = notes
    return out


def batch_period(batch: Batch) -> Period:
    """A batch's own `[started_at, ended_at)`, the period its indicators cover."""
    span = explicit_period(start=batch.started_at, end=batch.ended_at)
    if span.duration > RAW_LIMIT and (span.start_ms % 3_600_000 or span.end_ms % 3_600_000):
        raise IndicatorError("a batch over 31 days is computed from hourly rollups: its start "
                             "and end must fall on whole hours")
    return span


def _grid_intensity(inputs: Inputs, *, period: Period, kwh: dict[str, float],
                    notes: list[str]) -> GridIntensityOut | None:
    """Purchased electricity hour by hour (rollups) weighted by éCO2mix's hourly intensity."""
    purchased = purchased_electricity(kwh)
    if purchased is None:
        return None
    source = purchased[1]
    intensity = inputs.store.hourly_intensity(start=period.start, end=period.end)
    if not intensity:
        return None  # nothing imported for the period: not an error, nothing to say
    energy = inputs.store.energy_hourly(site=inputs.equipment.site, equipment=inputs.equipment.id,
                                        source=source, start=period.start, end=period.end)
    matched = [hour for hour in energy if hour in intensity]
    total = sum(energy[hour] for hour in matched)
    if total <= 0:
        notes.append("grid intensity: no hourly electricity rollup matches the imported hours")
        return None
    weighted = sum(energy[hour] * intensity[hour] for hour in matched)
    return GridIntensityOut(
        label="RTE éCO2mix: direct emissions of French electricity production, weighted by "
              "when the equipment drew its electricity; not life-cycle, not scope 2",
        source=SOURCE, electricity_source=source, weighted_g_per_kwh=weighted / total,
        energy_kwh_matched=total, hours_matched=len(matched),
        direct_production_co2e_kg=weighted / 1000)


def _batches(inputs: Inputs, *, period: Period, batch_id: int | None,
             campaign_id: int | None) -> list[Batch]:
    eq = inputs.equipment
    query = live(Batch).filter_by(site=eq.site, equipment=eq.id).order_by(Batch.started_at)
    if batch_id is not None:
        query = query.where(Batch.id == batch_id)
    elif campaign_id is not None:
        query = query.where(Batch.campaign_id == campaign_id)
    else:
        # A batch belongs to the period it ends in, so that consecutive periods never count a
        # batch twice.
        query = query.where(Batch.ended_at > period.start, Batch.ended_at <= period.end)
    return list(inputs.db.scalars(query))


def _emission_lines(inputs: Inputs, *, energy: EnergyBySourceOut, period: Period,
                    notes: list[str]) -> list[EmissionLine]:
    figures = {s.source: s for s in energy.sources}
    kwh = {s.source: s.energy_kwh for s in energy.sources}
    eq = inputs.equipment
    lines: list[EmissionLine] = []
    try:
        purchased = purchased_electricity(kwh)
        if purchased is not None:
            activity, source, quantity = purchased
            method, uncertainty = _activity_uncertainty(inputs, figures[source], period)
            measure = partial(_source_kwh, inputs, source)
            for part in inputs.factors.parts("electricity"):
                lines += _split_activity(
                    inputs, carrier="electricity", part=part, activity=activity,
                    quantity=quantity, unit="kWh", period=period, notes=notes,
                    measure=measure, method=method, uncertainty_pct=uncertainty)
            lines += _market_based(inputs, activity=activity, quantity=quantity, period=period,
                                   notes=notes, measure=measure, method=method,
                                   uncertainty_pct=uncertainty)
        pv = pv_self_consumed(kwh)
        if pv is not None:
            lines += pv_lines(pv, method=_method(figures["pv"]))
        if "fuel" in kwh:
            method, uncertainty = _activity_uncertainty(inputs, figures["fuel"], period)
            carrier = _carrier(eq.with_role("fuel_energy"))
            for part in inputs.factors.parts(carrier):
                lines += _split_activity(
                    inputs, carrier=carrier, part=part, activity="fuel_energy",
                    quantity=kwh["fuel"], unit="kWh", period=period, notes=notes,
                    measure=partial(_source_kwh, inputs, "fuel"), method=method,
                    uncertainty_pct=uncertainty)
        for sensor in eq.with_role("fuel_volume"):
            increase = inputs.evidence.increase(eq, sensor, period)
            if increase is None:
                notes.append(f"fuel volume {sensor.id}: no usable reading")
                continue
            carrier = _carrier([sensor])
            uncertainty = _counter_uncertainty(inputs, sensor, increase[0], period)
            for part in inputs.factors.parts(carrier):
                lines += _split_activity(
                    inputs, carrier=carrier, part=part, activity="fuel_volume",
                    quantity=increase[0], unit=increase[1], period=period, notes=notes,
                    measure=partial(_increase_in, inputs, sensor, increase[1]),
                    method="counter", uncertainty_pct=uncertainty)
    except UnknownFactor as exc:
        raise IndicatorError(str(exc)) from None
    top_ups = inputs.db.scalars(
        live(RefrigerantTopUp).filter_by(site=eq.site, equipment=eq.id)
        .where(RefrigerantTopUp.at >= period.start, RefrigerantTopUp.at < period.end)
        .order_by(RefrigerantTopUp.at))
    for top_up in top_ups:
        if getattr(top_up, "voided_at", None) is not None:
            continue
        try:
            lines.append(refrigerant_emission(inputs.gwp, refrigerant=top_up.refrigerant,
                                              leaked_kg=top_up.mass_kg,
                                              report=inputs.gwp_report))
        except UnknownFactor as exc:
            raise IndicatorError(str(exc)) from None
    # --- manual activity data: fuel deliveries, manual meter indexes (api/accounting/manual.py)
    lines += manual_emission_lines(inputs.db, inputs.factors, equipment=eq, period=period,
                                   timezone=inputs.timezone, notes=notes)
    # ---
    return lines


def _carrier(sensors: list[SensorInfo]) -> str:
    # The fuel a meter measures is the sensor's `carrier` attribute in the site configuration;
    # without one, fuel oil (the demonstrator's back-up fuel).
    return next((s.attributes["carrier"] for s in sensors if "carrier" in s.attributes),
                "fuel_oil")


def _method(figure: SourceEnergy) -> str:
    return "counter" if figure.method == "counter_difference" else figure.method


def _activity_uncertainty(inputs: Inputs, figure: SourceEnergy,
                          period: Period) -> tuple[str, float]:
    """(method, activity uncertainty %) of an energy figure (docs/indicators.md)."""
    method = _method(figure)
    sensors = [s for s in inputs.equipment.sensors if s.id in figure.sensors]
    klass = next((s.attributes["accuracy_class"] for s in sensors
                  if "accuracy_class" in s.attributes), None)
    if method == "counter" and sensors:
        counters = [s for s in sensors if s.role.kind.value == "counter"] or sensors
        return method, _counter_uncertainty(inputs, counters[0], figure.energy_kwh, period)
    return method, power_integral_uncertainty_pct(coverage=figure.coverage, accuracy_class=klass)


def _counter_uncertainty(inputs: Inputs, sensor: SensorInfo, increase: float,
                         period: Period) -> float:
    """Class error, plus the register's resolution where the counter is a float32 (the
    template's data type, or a `data_type` attribute of the sensor for a counter the template
    does not describe): the step near the counter's value at the end of the period."""
    data_type = sensor.attributes.get("data_type") or sensor.data_type
    magnitude = None
    if data_type == "float32":
        samples, _ = inputs.store.counter_samples(
            site=inputs.equipment.site, sensor=sensor.id, start=period.end, end=period.end,
            around=inputs.around)
        magnitude = max((abs(v) for _, v in samples), default=None)
    return counter_uncertainty_pct(increase=increase, register_max=magnitude,
                                   data_type=data_type,
                                   accuracy_class=sensor.attributes.get("accuracy_class"))


def _source_kwh(inputs: Inputs, source: str, part: Period) -> float | None:
    figures = inputs.evidence.energy(inputs.equipment, part).sources
    return next((f.energy_kwh for f in figures if f.source == source), None)


def _increase_in(inputs: Inputs, sensor: SensorInfo, unit: str, part: Period) -> float | None:
    increase = inputs.evidence.increase(inputs.equipment, sensor, part)
    if increase is None:
        return None
    return convert(increase[0], from_unit=increase[1], to_unit=unit)


def _split_activity(inputs: Inputs, *, carrier: str, part: Part, activity: str,
                    quantity: float, unit: str, period: Period, notes: list[str],
                    measure: Callable[[Period], float | None], method: str | None = None,
                    uncertainty_pct: float | None = None,
                    scope2_method: str | None = None) -> list[EmissionLine]:
    """One line per version of the carrier's default factor of `part` in force during the
    period (and its biogenic CO2 line): the activity is measured again over each part, cut
    at the validity boundaries (local midnights), with the same evidence as the whole (raw
    readings, or hourly rollups for long periods)."""
    factor_id = inputs.factors.default_id(carrier, part, unit=unit)
    spans = factor_spans(inputs.factors, factor_id=factor_id, period=period,
                         timezone=inputs.timezone)
    on = period.start.astimezone(ZoneInfo(inputs.timezone)).date()
    pieces: list[tuple[Period, EmissionFactor, float, float | None]]
    if len(spans) == 1:
        pieces = [(spans[0][0], spans[0][1], quantity, 1.0)]
    else:
        parts = [measure(span) for span, _ in spans]
        if any(q is None for q in parts):
            # No reading around a boundary: where the activity fell is unknown, so it is not
            # guessed; the first day's factor is kept and the reader told.
            span, factor = spans[0]
            notes.append(f"{activity}: the period crosses a validity boundary of factor "
                         f"{factor.id!r} but the activity could not be measured on each "
                         f"side; all of it uses version {factor.version}")
            pieces = [(period, factor, quantity, 1.0)]
        else:
            known = [q or 0.0 for q in parts]
            total = sum(known)
            pieces = [(span, factor, q, q / total if total else None)
                      for (span, factor), q in zip(spans, known, strict=True)]
    lines: list[EmissionLine] = []
    for span, factor, q, share in pieces:
        day = max(on, span.start.astimezone(ZoneInfo(inputs.timezone)).date())
        lines.append(emission_line(factor, activity=activity, quantity=q, unit=unit, span=span,
                                   share=share, method=method, on=day,
                                   scope2_method=scope2_method,
                                   activity_uncertainty_pct=uncertainty_pct))
        biogenic = biogenic_line(factor, activity=activity, quantity=q, unit=unit, span=span,
                                 share=share, method=method,
                                 activity_uncertainty_pct=uncertainty_pct)
        if biogenic is not None:
            lines.append(biogenic)
    return lines


def _contracts(inputs: Inputs, period: Period) -> list[tuple[Period, SupplyContract | None]]:
    """The consecutive parts of the period with the site's contract valid over each (None
    where no contract covers it); a voided contract does not count. Overlapping contracts:
    the latest to start wins."""
    rows = list(inputs.db.scalars(
        select(ElectricityContract).filter_by(site=inputs.equipment.site)
        .where(ElectricityContract.voided_at.is_(None),
               ElectricityContract.valid_from < period.end)
        .order_by(ElectricityContract.valid_from)))
    rows = [r for r in rows if r.valid_to is None or r.valid_to > period.start]
    cuts = sorted({period.start, period.end,
                   *(t for r in rows for t in (r.valid_from, r.valid_to)
                     if t is not None and period.start < t < period.end)})
    out: list[tuple[Period, SupplyContract | None]] = []
    for a, b in itertools.pairwise(cuts):
        valid = [r for r in rows if r.valid_from <= a and (r.valid_to is None or r.valid_to > a)]
        row = valid[-1] if valid else None
        contract = None if row is None else SupplyContract(
            id=row.id, version=row.version, supplier=row.supplier, product=row.product,
            factor_kg_per_kwh=row.factor_kg_per_kwh, factor_source=row.factor_source,
            guarantees_of_origin=row.guarantees_of_origin, certificate_ref=row.certificate_ref)
        if out and out[-1][1] == contract:
            a = out.pop()[0].start
        out.append((Period(start=a, end=b, label=f"{a.isoformat()}/{b.isoformat()}"), contract))
    return out


def _market_based(inputs: Inputs, *, activity: str, quantity: float, period: Period,
                  notes: list[str], measure: Callable[[Period], float | None],
                  method: str | None, uncertainty_pct: float | None) -> list[EmissionLine]:
    """Market-based scope 2: the contract valid over each part of the period, the residual
    mix (`electricity_residual_mix` default) where none is."""
    spans = _contracts(inputs, period)
    if len(spans) == 1:
        parts: list[float | None] = [quantity]
    else:
        parts = [measure(span) for span, _ in spans]
        if any(q is None for q in parts):
            notes.append(f"{activity}: the electricity could not be measured on each side of a "
                         "contract's start or end; no market-based figure")
            return []
    total = sum(q or 0.0 for q in parts)
    lines: list[EmissionLine] = []
    for (span, contract), q in zip(spans, parts, strict=True):
        kwh = q or 0.0
        share = kwh / total if total else None
        if contract is not None:
            lines.append(contract_line(contract, activity=activity, kwh=kwh, span=span,
                                       share=share, method=method,
                                       activity_uncertainty_pct=uncertainty_pct))
            continue
        try:
            residual = _split_activity(
                inputs, carrier="electricity_residual_mix", part="generation",
                activity=activity, quantity=kwh, unit="kWh", period=span, notes=notes,
                measure=measure, method=method, uncertainty_pct=uncertainty_pct,
                scope2_method="market")
        except UnknownFactor as exc:
            notes.append(f"market-based scope 2: no contract covers {span.label} and {exc}; "
                         "no market-based figure")
            return []
        for line in residual:
            line.share = (line.quantity / total) if total else None
        lines += residual
    return lines


def water_evaporated_kg(*, mass_in_kg: float, moisture_in: float, moisture_out: float) -> float:
    """Water removed from a wet mass, wet-basis moistures as fractions (dry-matter balance):
    m_water = m_in × (1 − (1 − w_in) / (1 − w_out))."""
    return mass_in_kg * (1 - (1 - moisture_in) / (1 - moisture_out))


def _dryer(inputs: Inputs, *, kwh: dict[str, float], batches: list[Batch], ghg: GhgOut,
           period: Period, notes: list[str]) -> DryerOut:
    water: float | None = None
    dry: float | None = None
    counted = [b for b in batches if b.mass_in_kg is not None and b.moisture_in_pct is not None
               and b.moisture_out_pct is not None]
    for b in batches:
        if b not in counted:
            notes.append(f"batch {b.id}: mass or moistures missing, not counted")
    if counted:
        water = sum(water_evaporated_kg(mass_in_kg=b.mass_in_kg or 0.0,
                                        moisture_in=(b.moisture_in_pct or 0.0) / 100,
                                        moisture_out=(b.moisture_out_pct or 0.0) / 100)
                    for b in counted)
        dry = sum((b.mass_in_kg or 0.0) * (1 - (b.moisture_in_pct or 0.0) / 100)
                  for b in counted)
    if "electricity" in kwh:
        used = kwh["electricity"]
    else:
        used = kwh.get("grid_import", 0.0) + kwh.get("pv", 0.0) - kwh.get("grid_export", 0.0)
    solar_heat = kwh.get("solar_heat", 0.0)
    fuel = kwh.get("fuel", 0.0)
    total = used + solar_heat + fuel
    purchased = kwh.get("grid_import", used) + fuel
    autonomy = min(1.0, max(0.0, 1 - purchased / total)) if total > 0 else None
    latent = inputs.references.latent_heat_of_water.to("kWh/kg")
    water_t = water / 1000 if water is not None else None
    dry_t = dry / 1000 if dry is not None else None
    co2e = ghg.scope1_co2e_kg + ghg.scope2_co2e_kg
    return DryerOut(
        batches=[b.id for b in counted], water_evaporated_kg=water, dry_matter_kg=dry,
        total_energy_kwh=total, purchased_energy_kwh=purchased, electricity_used_kwh=used,
        solar_heat_kwh=solar_heat, autonomy_rate=autonomy,
        kwh_per_t_water=_per(total, water_t), purchased_kwh_per_t_water=_per(purchased, water_t),
        kwh_per_t_dry_matter=_per(total, dry_t), latent_heat_kwh_per_kg=latent,
        metered_energy_per_latent_heat=_per(total,
                                            water * latent if water is not None else None),
        co2e_kg_per_t_water=_per(co2e, water_t), co2e_kg_per_t_dry_matter=_per(co2e, dry_t),
        air_side=_air_side(inputs, period=period, water=water, metered_kwh=total, notes=notes))


# The gap between the water the air took up and the batches' water that the instruments'
# accuracy explains: RH transmitters ±2 % RH (≈ ±5 % on W_out − W_in at 25 → 32 °C),
# airflow ±5 %, batch moistures ±1 point (≈ ±3 % on the water): ≈ 8 % combined, 10 % stated.
WATER_BALANCE_TOLERANCE = 0.10
_AIR_UNITS = {"inlet_air_temp": "degC", "outlet_air_temp": "degC",
              "inlet_air_humidity": "percent", "outlet_air_humidity": "percent",
              "airflow": "m**3/h"}


def _air_side(inputs: Inputs, *, period: Period, water: float | None, metered_kwh: float,
              notes: list[str]) -> AirSideOut | None:
    """The air-side balance (api/accounting/airside.py) over the period, from raw readings."""
    eq = inputs.equipment
    sensors = {role: eq.with_role(role) for role in airside.ROLES}
    if not all(sensors.values()):
        return None  # the dryer does not measure its air: nothing to say
    if period.duration > RAW_LIMIT:
        notes.append("air-side balance: computed from raw readings only, for periods up to "
                     "31 days")
        return None
    samples: dict[str, list[tuple[int, float]]] = {}
    for role, found in sensors.items():
        raw, unit = inputs.store.counter_samples(site=eq.site, sensor=found[0].id,
                                                 start=period.start, end=period.end,
                                                 around=inputs.around)
        samples[role] = [(t, convert(v, from_unit=unit, to_unit=_AIR_UNITS[role]))
                         for t, v in raw] if unit else raw
    pressure = float(sensors["airflow"][0].attributes.get("pressure_pa",
                                                          airside.STANDARD_PRESSURE_PA))
    sums = airside.integrate(samples, start_ms=period.start_ms, end_ms=period.end_ms,
                             max_gap_ms=int(inputs.max_gap.total_seconds() * 1000),
                             pressure_pa=pressure)
    if sums.covered_s <= 0:
        notes.append("air-side balance: no time with all five air sensors read")
        return None
    heat = sums.latent_j / 3.6e6
    ambient = heat - metered_kwh
    if ambient < 0:
        notes.append(f"air-side balance: the metered heat ({metered_kwh:.1f} kWh) exceeds the "
                     f"heat the air took up as vapour ({heat:.1f} kWh); the rest left as "
                     "sensible heat in the exhaust air or through the walls: ambient share 0")
    gap = _per(sums.water_kg, water)
    gap = gap - 1 if gap is not None else None
    if gap is not None and abs(gap) > WATER_BALANCE_TOLERANCE:
        notes.append(f"air-side balance: the air took up {sums.water_kg:.0f} kg of water, the "
                     f"batches lost {water:.0f} kg ({gap:+.0%}): check the air sensors, the "
                     "airflow and the batches' moistures")
    return AirSideOut(
        pressure_pa=pressure, covered_h=sums.covered_s / 3600, dry_air_kg=sums.dry_air_kg,
        mean_inlet_humidity_ratio=sums.mean_inlet_ratio,
        mean_outlet_humidity_ratio=sums.mean_outlet_ratio, water_taken_up_kg=sums.water_kg,
        water_balance_gap=gap, water_balance_tolerance=WATER_BALANCE_TOLERANCE,
        water_balance_within_tolerance=None if gap is None
        else abs(gap) <= WATER_BALANCE_TOLERANCE,
        heat_taken_up_kwh=heat, sensible_heat_kwh=sums.sensible_j / 3.6e6,
        metered_heat_kwh=metered_kwh, ambient_heat_kwh=max(0.0, ambient),
        ambient_share=max(0.0, ambient) / heat if heat > 0 else None)


def _samples(inputs: Inputs, role: str, start: datetime, end: datetime
             ) -> tuple[str, list[tuple[int, float]]] | None:
    """Raw readings of the first sensor of a role, for a batch's own (short) span."""
    sensors = inputs.equipment.with_role(role)
    if not sensors or end - start > RAW_LIMIT:
        return None
    samples, _ = inputs.store.counter_samples(site=inputs.equipment.site, sensor=sensors[0].id,
                                              start=start, end=end, around=inputs.around)
    return sensors[0].id, samples


def _time_where(inputs: Inputs, role: str, period: Period,
                predicate: Callable[[float], bool]) -> TimeShare | None:
    sensors = inputs.equipment.with_role(role)
    if not sensors:
        return None
    return inputs.evidence.time_where(inputs.equipment, sensors[0], period, predicate)


def _freezer(inputs: Inputs, *, kwh: dict[str, float], batches: list[Batch], ghg: GhgOut,
             period: Period, notes: list[str]) -> FreezerOut:
    frozen = sum(b.mass_in_kg for b in batches if b.mass_in_kg is not None) if batches else None
    electricity = kwh.get("electricity", kwh.get("grid_import"))
    target = inputs.references.frozen_core_temperature.to("degC")
    cores: list[CoreFreezing] = []
    for b in batches:
        found = _samples(inputs, "product_core_temp", b.started_at, b.ended_at)
        reached = None if found is None else first_at_or_below(
            found[1], start_ms=_ms(b.started_at), end_ms=_ms(b.ended_at), threshold=target)
        cores.append(CoreFreezing(
            batch=b.id, started_at=b.started_at, target_c=target,
            reached_at=datetime.fromtimestamp(reached / 1000, UTC) if reached else None,
            minutes_to_target=(reached - _ms(b.started_at)) / 60000 if reached else None))
    low, high = inputs.references.bands()["cabinet_air_temp"]
    cabinet = inputs.equipment.with_role("cabinet_air_temp")
    in_band = (inputs.evidence.time_in_band(inputs.equipment, cabinet[0], period, low, high)
               if cabinet else None)
    share = in_band.share if in_band else None
    if in_band is None and cabinet:
        notes.append(f"time in band: no {low:g}…{high:g} °C figure from "
                     f"{inputs.evidence.name} (rollups older than the band, or none: rerun "
                     "`dynamo api rollup` over the period)")
    opened = _time_where(inputs, "door_open", period, lambda v: v >= 0.5)
    door = opened.matching_ms / 1000 if opened else None
    leak = sum(line.co2e_kg for line in ghg.lines if line.activity.startswith("refrigerant"))
    return FreezerOut(batches=[b.id for b in batches], frozen_kg=frozen,
                      kwh_per_kg_frozen=_per(electricity, frozen), core_freezing=cores,
                      band_min_c=low, band_max_c=high, share_of_time_in_band=share,
                      band_known_s=in_band.known_ms / 1000 if in_band else None,
                      door_open_s=door, refrigerant_leak_co2e_kg=leak,
                      refrigerant_charge_tco2e=_charge_tco2e(inputs, notes))


# The EU F-gas Regulation expresses a system's charge in tonnes of CO2e with the GWPs of its
# annexes, which are IPCC AR4's (docs/sources.md#fgas-2014-annexes), whatever set the
# inventory's emission figures use.
FGAS_GWP_REPORT = "AR4"


def _charge_tco2e(inputs: Inputs, notes: list[str]) -> float | None:
    charge = inputs.equipment.refrigerant
    if charge is None:
        return None
    try:
        gwp, _ = inputs.gwp.gwp(charge.fluid, report=FGAS_GWP_REPORT)
    except LookupError as exc:
        notes.append(f"refrigerant charge: {exc}")
        return None
    return charge.charge_kg * gwp / 1000


def _counter(inputs: Inputs, role: str, period: Period) -> float | None:
    total: float | None = None
    for sensor in inputs.equipment.with_role(role):
        increase = inputs.evidence.increase(inputs.equipment, sensor, period)
        if increase is None:
            return None
        total = (total or 0.0) + increase[0]
    return total


def _materials(inputs: Inputs, *, period: Period, on: date,
               notes: list[str]) -> list[tuple[MaterialOut, EmissionLine | None]]:
    """Each `material_consumed` counter's kg × the factor of the latest lot of that material
    received before the period's end: the packaging figure and its scope 3 category 1 line."""
    eq = inputs.equipment
    out: list[tuple[MaterialOut, EmissionLine | None]] = []
    for sensor in eq.with_role("material_consumed"):
        material = sensor.attributes.get("material", sensor.id)
        increase = inputs.evidence.increase(eq, sensor, period)
        if increase is None:
            notes.append(f"material {material}: no usable reading")
            continue
        kg = convert(increase[0], from_unit=increase[1], to_unit="kg")
        lot = inputs.db.scalars(
            live(MaterialLot).filter_by(site=eq.site, equipment=eq.id, material=material)
            .where(MaterialLot.received_at < period.end)
            .order_by(MaterialLot.received_at.desc())).first()
        factor = None
        if lot is None:
            notes.append(f"material {material}: no material lot recorded, so no factor")
        else:
            try:
                factor = inputs.factors.get(lot.factor_id, on=on)
            except UnknownFactor as exc:
                notes.append(f"material {material}: {exc}")
        line = None
        if factor is not None:
            line = emission_line(
                factor.model_copy(update={"part": "life_cycle", "material": material}),
                activity=f"material {material}", quantity=kg, unit="kg", scope=3,
                method="counter", on=on,
                activity_uncertainty_pct=_counter_uncertainty(inputs, sensor, increase[0],
                                                              period))
        out.append((MaterialOut(
            material=material, consumed_kg=kg, factor_id=factor.id if factor else None,
            factor_version=factor.version if factor else None,
            co2e_kg=kg * factor.value if factor else None), line))
    return out


def _packaging(inputs: Inputs, *, kwh: dict[str, float], period: Period,
               materials: list[MaterialOut], nominal_rate_upm: float | None,
               notes: list[str]) -> PackagingOut:
    good = _counter(inputs, "units_packed", period)
    rejected = _counter(inputs, "units_rejected", period)
    electricity = kwh.get("electricity", kwh.get("grid_import"))
    material_co2e = (sum(m.co2e_kg or 0.0 for m in materials)
                     if materials and all(m.co2e_kg is not None for m in materials) else None)
    performance = None
    running = _time_where(inputs, "line_state", period, lambda v: v == 1)
    running_ms = running.matching_ms if running else 0
    availability, reason, planned = _availability(inputs, period)
    if reason is not None:
        notes.append(f"OEE availability: {reason}")
    made = None if good is None or rejected is None else good + rejected
    if nominal_rate_upm is None:
        notes.append("performance and OEE need nominal_rate_upm (the line's rated speed)")
    elif made is not None and running_ms:
        performance = made / (running_ms / 60000 * nominal_rate_upm)
    quality = _per(good, made)
    oee = (availability * performance * quality
           if availability is not None and performance is not None and quality is not None
           else None)
    return PackagingOut(
        units_packed=good, units_rejected=rejected,
        kwh_per_1000_units=_per(electricity, good / 1000 if good else None),
        materials=materials, material_co2e_kg_per_unit=_per(material_co2e, good),
        oee_availability=availability, oee_availability_reason=reason, planned_time=planned,
        performance=performance, quality=quality, oee=oee, nominal_rate_upm=nominal_rate_upm)


def _availability(inputs: Inputs, period: Period
                  ) -> tuple[float | None, str | None, PlannedTimeOut | None]:
    """OEE availability on the line's planned time (api/accounting/calendar.py), with the
    reason when it cannot be known: no shift calendar is never read as "always planned"."""
    sensors = inputs.equipment.with_role("line_state")
    if not sensors:
        return None, "no line_state sensor", None
    found = calendars.effective(inputs.db, inputs.equipment)
    if found.calendar is None:
        return None, ("no shift calendar for this line, so no planned production time (site "
                      "configuration `calendar:`, or PUT …/calendar)"), None
    planned = planned_time(found.calendar, start_ms=period.start_ms, end_ms=period.end_ms,
                           timezone=inputs.timezone)
    split = line_states(inputs.store, inputs.equipment, sensors[0], period=period,
                        busy=planned.busy, rollups=isinstance(inputs.evidence, RollupEvidence),
                        around=inputs.around, max_gap=inputs.max_gap)
    out, value, reason = availability(split, planned, calendar=found.source,
                                      version=found.version)
    return value, reason, out


def _avoided(inputs: Inputs, *, name: str, out: IndicatorsOut, on: date) -> AvoidedOut:
    # A stored baseline first (the site's own), else a shipped one (api/data/baselines.yaml).
    row: Baseline | ShippedBaseline | None = (
        inputs.db.scalars(live(Baseline).filter_by(name=name)).first()
        or shipped_baseline(name))
    if row is None:
        raise IndicatorError(f"no baseline {name!r}")
    if row.equipment_kind != out.kind:
        raise IndicatorError(f"baseline {name!r} is for a {row.equipment_kind}, not a {out.kind}")
    quantity: float | None = None
    if out.dryer and row.output == "t_water_evaporated" and out.dryer.water_evaporated_kg:
        quantity = out.dryer.water_evaporated_kg / 1000
    elif out.dryer and row.output == "t_dry_matter" and out.dryer.dry_matter_kg:
        quantity = out.dryer.dry_matter_kg / 1000
    elif out.freezer and row.output == "kg_frozen":
        quantity = out.freezer.frozen_kg
    elif out.packaging and row.output == "units_packed":
        quantity = out.packaging.units_packed
    if quantity is None:
        raise IndicatorError(f"baseline {name!r} needs {row.output}, which the period lacks")
    try:
        factor = inputs.factors.get(row.factor_id, on=on)
    except UnknownFactor as exc:
        raise IndicatorError(str(exc)) from None
    activity = convert(quantity * row.activity_per_output, from_unit=row.activity_unit,
                       to_unit=factor.activity_unit)
    baseline_kg = activity * factor.value
    actual = out.ghg.scope1_co2e_kg + out.ghg.scope2_co2e_kg
    return AvoidedOut(baseline=row.name, baseline_description=row.description,
                      output=row.output, output_quantity=quantity, baseline_co2e_kg=baseline_kg,
                      actual_co2e_kg=actual, avoided_co2e_kg=baseline_kg - actual,
                      factor_id=factor.id, factor_version=factor.version)
