"""Indicators of an equipment over a period or a batch: energy by source, GHG by scope,
avoided emissions, and the equipment's own figures."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request

from api.accounting.evidence import RAW_LIMIT, Evidence, evidence_for
from api.accounting.indicators import IndicatorError, Inputs, batch_period, compute
from api.accounting.references import References
from api.deps import Db, Equipment, Factors, Gwp, ReportPeriod, Settings, Store
from api.periods import Period, explicit_period
from api.records.live import is_live
from api.records.tables import Batch, Campaign
from api.schemas import EnergyBySourceOut, IndicatorsOut
from api.sites import EquipmentInfo

router = APIRouter(tags=["indicators"])
# A request may name the GWP-100 set of its refrigerant lines (default: the deployment's).
GwpSet = Annotated[Literal["AR4", "AR5", "AR6"] | None, Query(
    alias="gwp", description="GWP-100 set of the refrigerant lines (default: the "
                             "deployment's, DYNAMO_API_GWP_REPORT)")]
_EQ = "/sites/{site}/equipment/{equipment}"
_BASELINE = r"^[a-z0-9][a-z0-9._-]{0,79}$"


def _evidence(store: Store, settings: Settings, period: Period) -> Evidence:
    return evidence_for(store, period, around=timedelta(seconds=settings.boundary_lookaround_s),
                        max_gap=timedelta(seconds=settings.integral_max_gap_s))


def make_inputs(request: Request, equipment: EquipmentInfo, store: Store, db: Db,
            factors: Factors, gwp: Gwp, settings: Settings, period: Period) -> Inputs:
    references: References = request.app.state.references
    return Inputs(equipment=equipment, store=store, db=db, factors=factors, gwp=gwp,
                  evidence=_evidence(store, settings, period),
                  gwp_report=settings.api_gwp_report, references=references,
                  timezone=equipment.timezone,
                  around=timedelta(seconds=settings.boundary_lookaround_s),
                  max_gap=timedelta(seconds=settings.integral_max_gap_s))


@router.get(f"{_EQ}/energy-by-source", response_model=EnergyBySourceOut)
def energy_sources(equipment: Equipment, store: Store, settings: Settings,
                   period: ReportPeriod) -> EnergyBySourceOut:
    """Energy per source (grid import/export, PV, solar heat, fuel, electricity used): counter
    difference where a counter exists, trapezoidal integral of power otherwise; periods over
    31 days are summed from the hourly rollups."""
    return _evidence(store, settings, period).energy(equipment, period)


@router.get(f"{_EQ}/indicators", response_model=IndicatorsOut)
def indicators(
    request: Request, equipment: Equipment, store: Store, db: Db, factors: Factors, gwp: Gwp,
    settings: Settings, period: ReportPeriod,
    baseline: Annotated[str | None, Query(pattern=_BASELINE,
                                          description="name of a stored baseline")] = None,
    nominal_rate_upm: Annotated[float | None, Query(
        gt=0, le=1e6, description="packaging line's rated speed, for OEE")] = None,
    gwp_set: GwpSet = None,
) -> IndicatorsOut:
    """Every indicator of the equipment over the period; batches counted are those ending in
    it."""
    inputs = make_inputs(request, equipment, store, db, factors, gwp, settings, period)
    inputs = replace(inputs, gwp_report=gwp_set or inputs.gwp_report)
    try:
        return compute(inputs, period=period, baseline=baseline,
                       nominal_rate_upm=nominal_rate_upm)
    except IndicatorError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get(f"{_EQ}/batches/{{batch_id}}/indicators", response_model=IndicatorsOut)
def batch_indicators(
    request: Request, equipment: Equipment, store: Store, db: Db, factors: Factors, gwp: Gwp,
    settings: Settings, batch_id: int,
    baseline: Annotated[str | None, Query(pattern=_BASELINE)] = None,
    nominal_rate_upm: Annotated[float | None, Query(gt=0, le=1e6)] = None,
    gwp_set: GwpSet = None,
) -> IndicatorsOut:
    """Indicators of one batch, over its own `[started_at, ended_at)`."""
    batch = db.get(Batch, batch_id)
    # A voided batch no longer has figures of its own.
    if not is_live(batch) or (batch.site, batch.equipment) != (equipment.site, equipment.id):
        raise HTTPException(404, f"no batch {batch_id} for {equipment.site}/{equipment.id}")
    try:
        span = batch_period(batch)
    except IndicatorError as exc:
        raise HTTPException(422, str(exc)) from None
    inputs = make_inputs(request, equipment, store, db, factors, gwp, settings, span)
    inputs = replace(inputs, gwp_report=gwp_set or inputs.gwp_report)
    try:
        return compute(inputs, period=span,
                       batch_id=batch_id, baseline=baseline, nominal_rate_upm=nominal_rate_upm)
    except IndicatorError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get(f"{_EQ}/campaigns/{{campaign_id}}/indicators", response_model=IndicatorsOut)
def campaign_indicators(
    request: Request, equipment: Equipment, store: Store, db: Db, factors: Factors, gwp: Gwp,
    settings: Settings, campaign_id: int,
    baseline: Annotated[str | None, Query(pattern=_BASELINE)] = None,
    nominal_rate_upm: Annotated[float | None, Query(gt=0, le=1e6)] = None,
    gwp_set: GwpSet = None,
) -> IndicatorsOut:
    """Indicators of a campaign: energy over its `[started_at, ended_at)`, production from
    its batches. A campaign still open (no end) is refused: its figures are not final."""
    campaign = db.get(Campaign, campaign_id)
    if not is_live(campaign) or (campaign.site, campaign.equipment) != (equipment.site,
                                                                   equipment.id):
        raise HTTPException(404, f"no campaign {campaign_id} for "
                                 f"{equipment.site}/{equipment.id}")
    if campaign.ended_at is None:
        raise HTTPException(422, f"campaign {campaign_id} has no end yet")
    span = explicit_period(start=campaign.started_at, end=campaign.ended_at)
    if span.duration > RAW_LIMIT and (span.start_ms % 3_600_000 or span.end_ms % 3_600_000):
        raise HTTPException(422, "a campaign over 31 days is computed from hourly rollups: "
                                 "its start and end must fall on whole hours")
    inputs = make_inputs(request, equipment, store, db, factors, gwp, settings, span)
    inputs = replace(inputs, gwp_report=gwp_set or inputs.gwp_report)
    try:
        return compute(inputs, period=span, campaign_id=campaign_id, baseline=baseline,
                       nominal_rate_upm=nominal_rate_upm)
    except IndicatorError as exc:
        raise HTTPException(422, str(exc)) from None
