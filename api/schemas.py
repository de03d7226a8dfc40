"""Response models of the api (its public contract, shown in the OpenAPI document)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from api.periods import PeriodError, check_moment
from api.records.validation import rule


class Check(BaseModel):
    ok: bool
    detail: str


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    influxdb: Check
    broker: Check
    rollups: Check | None = Field(default=None, description="the in-process rollup job, "
                                  "when enabled (informative: does not degrade the status)")


class SensorOut(BaseModel):
    id: str
    role: str
    unit: str
    device: str


class EquipmentOut(BaseModel):
    site: str
    id: str
    kind: str
    name: str
    gateway: str
    sensors: list[SensorOut]


class ReadingOut(BaseModel):
    sensor: str
    role: str | None
    time: datetime
    value: float | None
    unit: str
    quality: str
    reason: str | None = None


class LatestOut(BaseModel):
    site: str
    equipment: str
    readings: list[ReadingOut]


class CounterDropOut(BaseModel):
    """A drop of a counter in the period: a roll-over of its integer register (the wrapped
    increment counted) or a reset (counting taken to restart from zero); docs/indicators.md."""

    model_config = ConfigDict(populate_by_name=True)

    sensor: str
    kind: Literal["rollover", "reset"]
    at: datetime = Field(description="the first reading after the drop (the period's end "
                                     "when the counter was interpolated there)")
    from_value: float = Field(alias="from", description="the counter before the drop")
    to: float = Field(description="the counter after the drop")
    increment: float = Field(description="what was counted for the step, in the sensor's unit")


class SensorEnergy(BaseModel):
    sensor: str
    role: str
    energy_kwh: float
    readings: int
    resets: int = Field(description="counter drops taken as resets (meter replaced, cleared)")
    rollovers: int = Field(default=0, description="counter drops taken as roll-overs of the "
                                                  "counter's integer register")
    drops: list[CounterDropOut] = Field(default_factory=list,
                                        description="each roll-over and reset, named")
    boundaries_interpolated: bool = Field(
        description="both ends of the period were interpolated between readings around them")
    largest_gap_s: float = Field(description="longest stretch without a reading in the period")


class EnergyOut(BaseModel):
    site: str
    equipment: str
    start: datetime
    end: datetime
    method: Literal["counter_difference"]
    energy_kwh: float | None = Field(description="energy consumed, from `consumption_role`")
    consumption_role: str | None
    by_role: dict[str, float]
    sensors: list[SensorEnergy]
    missing: list[str] = Field(description="counter sensors with no usable reading")


class FactorOut(BaseModel):
    id: str
    version: str
    value: float
    unit: str
    scope: int | None
    basis: str | None
    source: str
    valid_from: date
    valid_to: date | None
    origin: str
    carrier: str | None = None
    part: str = "life_cycle"
    material: str | None = None
    uncertainty_pct: float | None = None
    biogenic_co2_per_unit: float = 0.0
    source_ref: str | None = None


class EmissionLine(BaseModel):
    """One activity × one factor: everything needed to recompute the figure by hand."""

    scope: Literal[1, 2, 3] | None = Field(
        description="GHG Protocol scope (= ghg_protocol_scope); none: outside the scopes "
                    "(biogenic CO2)")
    activity: str = Field(description="what was measured, e.g. grid_import_energy, R290 leak")
    quantity: float
    quantity_unit: str
    factor_id: str
    factor_version: str
    factor_value: float
    factor_unit: str
    factor_source: str
    co2e_kg: float
    applies_from: datetime | None = Field(
        default=None, description="start of the part of the period this factor applied to "
                                  "(a period crossing a factor's validity is split there)")
    applies_to: datetime | None = Field(default=None, description="its end, exclusive")
    share: float | None = Field(
        default=None, description="this line's share of the activity over the whole period")
    line: str = Field(default="", description="kind of line (api/data/ghg_categories.yaml)")
    part: str | None = Field(default=None,
                             description="combustion, upstream, generation or life_cycle")
    ghg_protocol_scope: Literal[1, 2, 3] | None = None
    ghg_protocol_category: int | None = Field(default=None, description="scope 3 category")
    iso_category: int | None = Field(default=None, description="ISO 14064-1:2018 category")
    iso_category_name_fr: str = ""
    iso_category_name_en: str = ""
    beges_poste: str | None = Field(default=None, description="ADEME BEGES v5 poste")
    scope2_method: Literal["location", "market"] | None = None
    gwp_report: str | None = Field(default=None, description="GWP set of a refrigerant line")
    method: str | None = Field(
        default=None, description="how the activity was measured: counter, power_integral, "
                                  "manual_record, record")
    note: str | None = Field(default=None,
                             description="e.g. \"2023 factor applied to 2026\" (English)")
    note_fr: str | None = Field(default=None,
                                description="the same in French (« facteur 2023 appliqué à 2026 »)")
    biogenic: bool = Field(default=False,
                           description="biogenic CO2 of biomass, outside the scope totals")
    factor_uncertainty_pct: float | None = None
    activity_uncertainty_pct: float | None = None
    uncertainty_pct: float | None = Field(
        default=None, description="√(factor² + activity²), relative, half-width")
    uncertainty_kg: float | None = Field(default=None, description="co2e_kg × uncertainty_pct")


class GhgTotal(BaseModel):
    """A total of lines of one scope (or ISO category), with its root-sum-square uncertainty."""

    key: str = Field(description="scope1, scope2_location, scope2_market, scope3_cat1, "
                                 "scope3_cat3, scope3; or iso1 … iso6")
    label_fr: str
    label_en: str
    co2e_kg: float
    uncertainty_kg: float = Field(description="√Σ (uncertainty_kg of each line)², independent")
    uncertainty_pct: float | None = Field(description="uncertainty_kg / co2e_kg × 100")
    lines: int


class AvoidedOut(BaseModel):
    """Avoided emissions against a named baseline: reported apart, never netted."""

    baseline: str
    baseline_description: str
    output: str
    output_quantity: float
    baseline_co2e_kg: float
    actual_co2e_kg: float
    avoided_co2e_kg: float
    factor_id: str
    factor_version: str


class GridIntensityOut(BaseModel):
    """Time-weighted grid intensity: when did the equipment draw its electricity?"""

    label: str = Field(description="what the figure is, and is not")
    source: str
    electricity_source: str
    weighted_g_per_kwh: float = Field(description="Σ E_h × I_h / Σ E_h over matched hours")
    energy_kwh_matched: float = Field(description="electricity in hours with an intensity")
    hours_matched: int
    direct_production_co2e_kg: float = Field(
        description="Σ E_h × I_h: direct emissions of the production behind it, NOT scope 2")


class GhgOut(BaseModel):
    scope1_co2e_kg: float = Field(
        description="fuel burnt on site (combustion part, with CH4 and N2O of biomass) and "
                    "refrigerant leaks")
    scope2_co2e_kg: float = Field(
        description="alias of scope2_location_co2e_kg (kept for existing readers)")
    scope2_location_co2e_kg: float = Field(
        default=0.0, description="purchased electricity × the grid's average generation factor")
    scope2_market_co2e_kg: float = Field(
        default=0.0, description="purchased electricity × the contract's factor where one is "
                                 "valid, else the residual mix")
    scope3_co2e_kg: float = Field(
        default=0.0, description="upstream of fuels and electricity (category 3) and "
                                 "purchased materials (category 1)")
    biogenic_co2_kg: float = Field(default=0.0,
                                   description="biogenic CO2 of biomass, outside every total")
    by_scope: list[GhgTotal] = Field(default_factory=list)
    by_iso_category: list[GhgTotal] = Field(
        default_factory=list, description="ISO 14064-1 categories (location-based category 2)")
    gwp_report: str
    lines: list[EmissionLine]
    avoided: list[AvoidedOut] = Field(default_factory=list,
                                      description="against stored baselines, never netted")
    grid_intensity: GridIntensityOut | None = Field(
        default=None, description="RTE éCO2mix, consumption-weighted in time; beside scope 2")


class SourceEnergy(BaseModel):
    source: str = Field(description="grid_import, grid_export, pv, solar_heat, fuel, electricity")
    energy_kwh: float
    method: Literal["counter_difference", "power_integral", "mixed"] = Field(
        description="`mixed` when hourly rollups of a long period used both")
    sensors: list[str]
    readings: int
    resets: int = Field(description="counter drops taken as resets (meter replaced, cleared)")
    rollovers: int = Field(default=0, description="counter drops taken as roll-overs of the "
                                                  "counter's integer register")
    drops: list[CounterDropOut] = Field(
        default_factory=list,
        description="each roll-over and reset, named (raw readings only; hourly rollups keep "
                    "the counts)")
    coverage: float = Field(description="share of the period with readings no further apart "
                                        "than the allowed gap (0–1)")
    largest_gap_s: float | None = Field(
        description="longest stretch without a reading (raw readings only)")


class EnergyBySourceOut(BaseModel):
    site: str
    equipment: str
    period: str
    start: datetime
    end: datetime
    sources: list[SourceEnergy]
    missing: list[str] = Field(description="sources with sensors but no usable reading")
    evidence: Literal["raw readings", "hourly rollups"] = "raw readings"


# --- production records -------------------------------------------------------------------
# The rules of each record live here (the api answers 422 with them; the console shows them
# in French through api.records.validation.field_errors). A rule on two fields is checked in
# the validator of the field the operator must fix.

_AWARE = "with a time zone, e.g. 2026-06-01T08:00:00+02:00"


def _aware(value: datetime | None, info: ValidationInfo) -> datetime | None:
    if value is None:
        return None
    name = info.field_name or "datetime"
    if value.tzinfo is None or value.utcoffset() is None:
        raise rule("naive_datetime", field=name)
    try:
        check_moment(value, name)
    except PeriodError:
        raise rule("datetime_range", field=name) from None
    return value


def _after(value: datetime | None, info: ValidationInfo, start: str) -> datetime | None:
    """`value` (an end) after the `start` field, when both are known and valid."""
    value = _aware(value, info)
    begun = info.data.get(start)
    if value is not None and begun is not None and value <= begun:
        raise rule("end_before_start", field=info.field_name, start=start)
    return value


class RecordMeta(BaseModel):
    """What every stored record carries besides its content."""

    version: int = Field(description="1 on creation, +1 on each change: send it back to edit")
    created_at: datetime
    created_by: str = Field(description="token:<name> (api) or user:<login> (console)")
    updated_at: datetime | None = None
    updated_by: str | None = None
    voided_at: datetime | None = Field(default=None,
                                       description="set when the record was voided: it no "
                                                   "longer counts in any figure")
    voided_by: str | None = None
    void_reason: str | None = None


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    started_at: datetime
    ended_at: datetime | None = None
    notes: str = Field(default="", max_length=5000)

    _started = field_validator("started_at")(_aware)

    @field_validator("ended_at")
    @classmethod
    def _ended(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        return _after(value, info, "started_at")


class CampaignOut(CampaignIn, RecordMeta):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site: str
    equipment: str


class BatchIn(BaseModel):
    """One batch through an equipment: a dryer batch (masses and wet-basis moistures in
    percent), a freezer batch (masses), a packaging run (units and its material lot)."""

    model_config = ConfigDict(extra="forbid")

    product: str = Field(min_length=1, max_length=200)
    campaign_id: int | None = None
    started_at: datetime
    ended_at: datetime
    mass_in_kg: float | None = Field(default=None, ge=0, le=1e7)
    mass_out_kg: float | None = Field(default=None, ge=0, le=1e7)
    # Below 100 %: the water removed divides by 1 − moisture out.
    moisture_in_pct: float | None = Field(default=None, ge=0, lt=100)
    moisture_out_pct: float | None = Field(default=None, ge=0, lt=100)
    units: int | None = Field(default=None, ge=0, le=10**9)
    material_lot_id: int | None = Field(default=None,
                                        description="the material lot a packaging run used")
    notes: str = Field(default="", max_length=5000)

    _started = field_validator("started_at")(_aware)

    @field_validator("ended_at")
    @classmethod
    def _ended(cls, value: datetime, info: ValidationInfo) -> datetime | None:
        return _after(value, info, "started_at")

    @field_validator("mass_out_kg")
    @classmethod
    def _mass_out(cls, value: float | None, info: ValidationInfo) -> float | None:
        mass_in = info.data.get("mass_in_kg")
        if value is not None and mass_in is not None and value > mass_in:
            raise rule("mass_order")
        return value

    @field_validator("moisture_out_pct")
    @classmethod
    def _moisture_out(cls, value: float | None, info: ValidationInfo) -> float | None:
        moisture_in = info.data.get("moisture_in_pct")
        if value is not None and moisture_in is not None and value > moisture_in:
            raise rule("moisture_order")
        return value


class BatchOut(BatchIn, RecordMeta):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site: str
    equipment: str


class MaterialLotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    material: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    supplier: str = Field(default="", max_length=200)
    mass_kg: float = Field(gt=0, le=1e7)
    factor_id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,79}$",
                           description="emission factor of the material (kgCO2e/kg)")
    received_at: datetime

    _received = field_validator("received_at")(_aware)


class MaterialLotOut(MaterialLotIn, RecordMeta):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site: str
    equipment: str


class RefrigerantTopUpIn(BaseModel):
    """Refrigerant refilled into a unit (a line of the F-gas logbook): the best estimate of
    what leaked since the last one."""

    model_config = ConfigDict(extra="forbid")

    refrigerant: str = Field(pattern=r"^R[0-9]{2,4}[A-Za-z]{0,2}$", examples=["R290"],
                             description="a refrigerant of the GWP table")
    mass_kg: float = Field(gt=0, le=10000)
    at: datetime
    intervention_ref: str = Field(default="", max_length=100,
                                  description="the intervention's reference (logbook, CERFA)")
    technician: str = Field(default="", max_length=200)
    notes: str = Field(default="", max_length=5000)

    _at = field_validator("at")(_aware)


class RefrigerantTopUpOut(RefrigerantTopUpIn, RecordMeta):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site: str
    equipment: str


ManualKind = Literal["fuel_delivery", "meter_reading"]
# Carrier → the unit it is counted in, per kind of manual entry.
MANUAL_CARRIERS: dict[str, dict[str, str]] = {
    "fuel_delivery": {"fuel_oil": "L", "propane": "kg", "wood_pellets": "kg",
                      "wood_chips": "kg"},
    "meter_reading": {"electricity": "kWh", "natural_gas": "kWh", "fuel_oil": "L",
                      "propane": "kg"},
}
_MANUAL_FIELDS: dict[str, tuple[str, ...]] = {
    "fuel_delivery": ("quantity", "delivered_at", "delivery_note"),
    "meter_reading": ("meter", "read_at", "index_value"),
}


class ManualActivityIn(BaseModel):
    """Activity data entered by hand: a fuel delivery (delivered = burnt, counted whole in the
    period of its delivery) or the index of a meter that is not connected (consecutive
    readings give the consumption between them). The fields of the other kind stay empty."""

    model_config = ConfigDict(extra="forbid")

    kind: ManualKind
    carrier: str = Field(pattern=r"^[a-z][a-z_]{0,39}$", examples=["fuel_oil"])
    unit: str | None = Field(default=None, max_length=20, validate_default=True,
                             description="the carrier's unit (filled in when omitted)")
    quantity: float | None = Field(default=None, ge=0, le=1e9, validate_default=True,
                                   description="fuel delivered, in `unit`")
    delivered_at: datetime | None = Field(default=None, validate_default=True)
    delivery_note: str | None = Field(default=None, min_length=1, max_length=100,
                                      validate_default=True,
                                      description="the delivery note's number")
    meter: str | None = Field(default=None, min_length=1, max_length=100,
                              validate_default=True)
    read_at: datetime | None = Field(default=None, validate_default=True)
    index_value: float | None = Field(default=None, ge=0, le=1e12, validate_default=True,
                                      description="the meter's index, in `unit`")
    notes: str = Field(default="", max_length=5000)

    _moments = field_validator("delivered_at", "read_at")(_aware)

    @field_validator("carrier")
    @classmethod
    def _carrier(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        if kind is not None and value not in MANUAL_CARRIERS[kind]:
            raise rule("carrier_for_kind", carrier=value, kind=kind,
                       allowed=", ".join(MANUAL_CARRIERS[kind]))
        return value

    @field_validator("unit")
    @classmethod
    def _unit(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind, carrier = info.data.get("kind"), info.data.get("carrier")
        if kind is None or carrier is None:
            return value
        expected = MANUAL_CARRIERS[kind][carrier]
        if value is not None and value != expected:
            raise rule("unit_for_carrier", carrier=carrier, unit=value, allowed=expected)
        return expected

    @field_validator(*(name for names in _MANUAL_FIELDS.values() for name in names))
    @classmethod
    def _of_kind(cls, value: object, info: ValidationInfo) -> object:
        kind = info.data.get("kind")
        if kind is None:
            return value
        if info.field_name in _MANUAL_FIELDS[kind]:
            if value is None:
                raise rule("required_for_kind", field=info.field_name, kind=kind)
        elif value is not None:
            raise rule("not_allowed_for_kind", field=info.field_name, kind=kind)
        return value


class ManualActivityOut(ManualActivityIn, RecordMeta):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site: str
    equipment: str


BaselineOutput = Literal["t_water_evaporated", "t_dry_matter", "kg_frozen", "units_packed"]


class BaselineIn(BaseModel):
    """A reference scenario, e.g. a fuel-oil dehydrator: activity per output × a factor."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,79}$")
    equipment_kind: Literal["dryer", "freezer", "packaging"]
    output: BaselineOutput
    activity_per_output: float = Field(gt=0, le=1e9)
    activity_unit: str = Field(min_length=1, max_length=40, examples=["L", "kWh"])
    factor_id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,79}$")
    description: str = Field(min_length=3, max_length=5000)
    source: str = Field(min_length=3, max_length=5000)


class BaselineOut(BaselineIn, RecordMeta):
    model_config = ConfigDict(from_attributes=True)

    id: int


class AuditOut(BaseModel):
    """One change of a record: who, when, through what, the content before and after."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    record_id: int
    site: str | None
    equipment: str | None
    action: Literal["create", "edit", "void", "purge"]
    actor: str
    via: Literal["api", "console", "cli"]
    at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str


class GwpOut(BaseModel):
    report: str
    source: str
    in_use: bool
    gwp: dict[str, float]


# --- equipment indicators -----------------------------------------------------------------

class AirSideOut(BaseModel):
    """What the drying air took up, from psychrometrics (api/accounting/airside.py)."""

    pressure_pa: float = Field(description="air pressure used for humidity ratios")
    covered_h: float = Field(description="time with all five air sensors read")
    dry_air_kg: float = Field(description="Σ airflow / v(T_in, W_in) × Δt")
    mean_inlet_humidity_ratio: float | None = Field(description="kg water / kg dry air")
    mean_outlet_humidity_ratio: float | None
    water_taken_up_kg: float = Field(description="Σ dry air × (W_out − W_in)")
    water_balance_gap: float | None = Field(
        description="water taken up by the air / water evaporated from the batches − 1")
    water_balance_tolerance: float = Field(
        description="the gap the sensors' accuracy explains (docs/indicators.md)")
    water_balance_within_tolerance: bool | None
    heat_taken_up_kwh: float = Field(
        description="latent heat the air took up as vapour: Σ dry air × (h(T_out, W_out) − "
                    "h(T_out, W_in))")
    sensible_heat_kwh: float = Field(
        description="Σ dry air × (h(T_out, W_in) − h(T_in, W_in)); negative: the air gave "
                    "its own heat to the hay")
    metered_heat_kwh: float = Field(description="the dryer's total metered energy")
    ambient_heat_kwh: float = Field(
        description="heat taken up − metered heat, at least 0: the ambient air's share, "
                    "which nothing meters")
    ambient_share: float | None = Field(description="ambient heat / heat taken up")


class DryerOut(BaseModel):
    batches: list[int] = Field(description="ids of the batches counted (ending in the period)")
    water_evaporated_kg: float | None = Field(
        description="Σ m_in × (1 − (1 − w_in) / (1 − w_out)), wet basis")
    dry_matter_kg: float | None = Field(description="Σ m_in × (1 − w_in)")
    total_energy_kwh: float = Field(description="electricity used + solar heat + fuel")
    purchased_energy_kwh: float = Field(description="grid import + fuel")
    electricity_used_kwh: float
    solar_heat_kwh: float
    autonomy_rate: float | None = Field(
        description="on-site renewable share of the total: 1 − purchased / total")
    kwh_per_t_water: float | None = Field(description="total energy per tonne of water removed")
    purchased_kwh_per_t_water: float | None
    kwh_per_t_dry_matter: float | None
    latent_heat_kwh_per_kg: float = Field(
        description="latent heat of evaporation of water (api/data/references.yaml)")
    metered_energy_per_latent_heat: float | None = Field(
        description="metered energy (total, not purchased) per latent heat of the water "
                    "evaporated; a barn dryer takes most of its heat from the ambient air, "
                    "which nothing meters, so a ratio below 1 is normal (~0.34 typical)")
    co2e_kg_per_t_water: float | None
    co2e_kg_per_t_dry_matter: float | None
    air_side: AirSideOut | None = Field(
        default=None, description="the air-side balance, where the dryer measures inlet and "
                                  "outlet air temperature and humidity and the airflow")


class CoreFreezing(BaseModel):
    batch: int
    started_at: datetime
    reached_at: datetime | None
    minutes_to_target: float | None
    target_c: float


class FreezerOut(BaseModel):
    batches: list[int]
    frozen_kg: float | None
    kwh_per_kg_frozen: float | None
    core_freezing: list[CoreFreezing]
    band_min_c: float
    band_max_c: float
    share_of_time_in_band: float | None = Field(
        description="of the time covered by cabinet readings")
    band_known_s: float | None = Field(
        default=None, description="time covered by cabinet readings, the share's denominator")
    door_open_s: float | None
    refrigerant_leak_co2e_kg: float
    refrigerant_charge_tco2e: float | None = Field(
        default=None, description="the system's charge × the fluid's GWP-100 of IPCC AR4, in "
                                  "tonnes: the figure the EU F-gas Regulation's thresholds use, "
                                  "whatever GWP set the emissions use")


class MaterialOut(BaseModel):
    material: str
    consumed_kg: float
    factor_id: str | None
    factor_version: str | None
    co2e_kg: float | None


class PlannedTimeOut(BaseModel):
    """The line's time against its shift calendar (ISO 22400-2:2014 time model), hours."""

    calendar: str = Field(description="the calendar used: `configuration` (the site's) or "
                                      "`api` (set by an admin)")
    calendar_version: int = Field(description="the admin's stored version (0: none)")
    planned_operation_h: float = Field(
        description="shifts − closures + extra shifts (ISO 22400 POT)")
    planned_downtime_h: float = Field(
        description="declared planned stops inside it (PDOT), not held against availability")
    planned_busy_h: float = Field(description="planned operation − planned downtime (PBT)")
    run_h: float = Field(description="running during planned busy time (APT)")
    unplanned_stop_h: float = Field(description="stopped or idle during planned busy time")
    fault_h: float = Field(description="in fault during planned busy time")
    unknown_h: float = Field(description="planned busy time without readings")
    running_outside_planned_h: float = Field(
        description="running outside planned busy time (closures, planned stops, no shift)")


class PackagingOut(BaseModel):
    units_packed: float | None
    units_rejected: float | None
    kwh_per_1000_units: float | None
    materials: list[MaterialOut]
    material_co2e_kg_per_unit: float | None
    oee_availability: float | None = Field(
        description="run time / planned busy time with readings (ISO 22400-2 APT / PBT); "
                    "null with `oee_availability_reason` when it cannot be known")
    oee_availability_reason: str | None = None
    planned_time: PlannedTimeOut | None = None
    performance: float | None = Field(
        description="(good + rejected) / (running time × nominal rate)")
    quality: float | None = Field(description="good / (good + rejected)")
    oee: float | None = Field(description="oee_availability × performance × quality")
    nominal_rate_upm: float | None


class IndicatorsOut(BaseModel):
    site: str
    equipment: str
    kind: str
    period: str
    start: datetime
    end: datetime
    energy: EnergyBySourceOut
    ghg: GhgOut
    dryer: DryerOut | None = None
    freezer: FreezerOut | None = None
    packaging: PackagingOut | None = None
    notes: list[str] = Field(default_factory=list, description="what could not be computed, why")


class ImportOut(BaseModel):
    points: int
    first_ms: int
    last_ms: int


class ElectricityContractIn(BaseModel):
    """An electricity supply contract of a site, for the market-based scope 2."""

    supplier: str = Field(min_length=1, max_length=200)
    product: str = Field(min_length=1, max_length=200)
    factor_kg_per_kwh: float = Field(ge=0, le=2, description="the supplier's disclosed factor")
    factor_source: str = Field(min_length=3, max_length=2000,
                               description="where the supplier disclosed it (document, year)")
    guarantees_of_origin: bool = False
    # Checked even when absent: guarantees of origin need it.
    certificate_ref: str | None = Field(default=None, max_length=200, validate_default=True)
    valid_from: datetime
    valid_to: datetime | None = Field(default=None, description="exclusive; empty: open-ended")
    notes: str = Field(default="", max_length=5000)

    _from = field_validator("valid_from")(_aware)

    @field_validator("certificate_ref")
    @classmethod
    def _certificate(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("guarantees_of_origin") and not value:
            raise rule("required_for_kind", field="certificate_ref",
                       kind="contract with guarantees of origin")
        return value

    @field_validator("valid_to")
    @classmethod
    def _to(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        return _after(value, info, "valid_from")


class ElectricityContractOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site: str
    supplier: str
    product: str
    factor_kg_per_kwh: float
    factor_source: str
    guarantees_of_origin: bool
    certificate_ref: str | None
    valid_from: datetime
    valid_to: datetime | None
    notes: str
    version: int
    voided_at: datetime | None
    void_reason: str | None
