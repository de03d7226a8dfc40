"""Response models of the api (its public contract, shown in the OpenAPI document)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.periods import PeriodError, check_moment


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


class SensorEnergy(BaseModel):
    sensor: str
    role: str
    energy_kwh: float
    readings: int
    resets: int = Field(description="counter drops treated as resets or roll-overs")
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


class EmissionLine(BaseModel):
    """One activity × one factor: everything needed to recompute the figure by hand."""

    scope: Literal[1, 2]
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
    scope1_co2e_kg: float = Field(description="fuel burnt on site and refrigerant leaks")
    scope2_co2e_kg: float = Field(description="purchased electricity, location-based")
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
    resets: int = Field(description="counter drops treated as resets or roll-overs")
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

_AWARE = "with a time zone, e.g. 2026-06-01T08:00:00+02:00"


def _aware(value: datetime | None, name: str) -> None:
    if value is None:
        return
    try:
        check_moment(value, name)
    except PeriodError as exc:
        raise ValueError(f"{exc} ({_AWARE})") from None


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    started_at: datetime
    ended_at: datetime | None = None
    notes: str = Field(default="", max_length=5000)

    @model_validator(mode="after")
    def _check(self) -> CampaignIn:
        _aware(self.started_at, "started_at")
        _aware(self.ended_at, "ended_at")
        if self.ended_at is not None and self.ended_at <= self.started_at:
            raise ValueError("ended_at must be after started_at")
        return self


class CampaignOut(CampaignIn):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site: str
    equipment: str


class BatchIn(BaseModel):
    """One batch through an equipment. Moistures are on a wet basis, in percent."""

    model_config = ConfigDict(extra="forbid")

    product: str = Field(min_length=1, max_length=200)
    campaign_id: int | None = None
    started_at: datetime
    ended_at: datetime
    mass_in_kg: float | None = Field(default=None, ge=0, le=1e7)
    mass_out_kg: float | None = Field(default=None, ge=0, le=1e7)
    moisture_in_pct: float | None = Field(default=None, ge=0, lt=100)
    moisture_out_pct: float | None = Field(default=None, ge=0, lt=100)
    units: int | None = Field(default=None, ge=0, le=10**9)
    notes: str = Field(default="", max_length=5000)

    @model_validator(mode="after")
    def _check(self) -> BatchIn:
        _aware(self.started_at, "started_at")
        _aware(self.ended_at, "ended_at")
        if self.ended_at <= self.started_at:
            raise ValueError("ended_at must be after started_at")
        if (self.moisture_in_pct is not None and self.moisture_out_pct is not None
                and self.moisture_out_pct > self.moisture_in_pct):
            raise ValueError("moisture_out_pct cannot exceed moisture_in_pct")
        return self


class BatchOut(BatchIn):
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

    @model_validator(mode="after")
    def _check(self) -> MaterialLotIn:
        _aware(self.received_at, "received_at")
        return self


class MaterialLotOut(MaterialLotIn):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site: str
    equipment: str


class RefrigerantTopUpIn(BaseModel):
    """Refrigerant refilled into a unit: the best estimate of what leaked since the last one."""

    model_config = ConfigDict(extra="forbid")

    refrigerant: str = Field(pattern=r"^R[0-9]{2,4}[A-Za-z]{0,2}$", examples=["R290"])
    mass_kg: float = Field(gt=0, le=10000)
    at: datetime
    notes: str = Field(default="", max_length=5000)

    @model_validator(mode="after")
    def _check(self) -> RefrigerantTopUpIn:
        _aware(self.at, "at")
        return self


class RefrigerantTopUpOut(RefrigerantTopUpIn):
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


class BaselineOut(BaselineIn):
    model_config = ConfigDict(from_attributes=True)

    id: int


class GwpOut(BaseModel):
    report: str
    source: str
    in_use: bool
    gwp: dict[str, float]


# --- equipment indicators -----------------------------------------------------------------

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
    latent_heat_floor_kwh_per_kg: float
    ratio_to_latent_heat_floor: float | None = Field(
        description="total (not purchased) specific energy over the latent-heat floor")
    co2e_kg_per_t_water: float | None
    co2e_kg_per_t_dry_matter: float | None


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


class MaterialOut(BaseModel):
    material: str
    consumed_kg: float
    factor_id: str | None
    factor_version: str | None
    co2e_kg: float | None


class PackagingOut(BaseModel):
    units_packed: float | None
    units_rejected: float | None
    kwh_per_1000_units: float | None
    materials: list[MaterialOut]
    material_co2e_kg_per_unit: float | None
    availability: float | None = Field(description="running / (running + fault) time")
    performance: float | None = Field(
        description="(good + rejected) / (running time × nominal rate)")
    quality: float | None = Field(description="good / (good + rejected)")
    oee: float | None
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
