"""The base year of an equipment: set by an admin (its figures frozen then), read by any role
of the site with today's recalculation beside the frozen figures (ISO 14064-1:2018 §6.4)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from api.accounting.base_year import (
    BaseYearIn,
    BaseYearOut,
    Snapshot,
    compute_year,
    reasons_between,
    view,
    year_period,
)
from api.accounting.indicators import IndicatorError, Inputs
from api.deps import ADMIN_ONLY, Caller, Db, Equipment, Factors, Gwp, Settings, Store
from api.periods import Period, PeriodError
from api.records.base_years import BaseYear, find
from api.routes.indicators import make_inputs
from api.sites import EquipmentInfo

router = APIRouter(tags=["base year"])
_PATH = "/sites/{site}/equipment/{equipment}/base-year"


def _year(request: Request, equipment: EquipmentInfo, db: Db, store: Store, factors: Factors,
          gwp: Gwp, settings: Settings, year: int) -> Snapshot:
    def inputs_for(period: Period) -> Inputs:
        return make_inputs(request, equipment, store, db, factors, gwp, settings, period)

    try:
        return compute_year(db, year=year, timezone=equipment.timezone, inputs_for=inputs_for)
    except (IndicatorError, PeriodError) as exc:
        raise HTTPException(422, f"base year {year}: {exc}") from None


def _stored(db: Db, equipment: EquipmentInfo) -> BaseYear:
    row = find(db, site=equipment.site, equipment=equipment.id)
    if row is None:
        raise HTTPException(404, f"no base year set for {equipment.site}/{equipment.id}")
    return row


@router.put(_PATH, response_model=BaseYearOut, dependencies=[ADMIN_ONLY])
def set_base_year(request: Request, equipment: Equipment, db: Db, store: Store,
                  factors: Factors, gwp: Gwp, settings: Settings, caller: Caller,
                  body: BaseYearIn) -> BaseYearOut:
    """Set the base year and freeze its figures as computed now. Setting the same year again
    changes nothing (409): corrections are recalculations, shown beside the original; another
    year replaces it, the former base year kept in the recalculation list."""
    try:
        period = year_period(body.year, timezone=equipment.timezone)
    except PeriodError as exc:
        raise HTTPException(422, str(exc)) from None
    if period.end > datetime.now(UTC):
        raise HTTPException(422, f"{body.year} is not over: a base year is a whole past year")
    frozen = _year(request, equipment, db, store, factors, gwp, settings, body.year)
    now = datetime.now(UTC)
    row = find(db, site=equipment.site, equipment=equipment.id)
    if row is not None and row.year == body.year:
        raise HTTPException(409, f"the base year is already {body.year}, frozen on "
                                 f"{row.set_at.isoformat()}; a correction is a recalculation "
                                 "(POST …/base-year/recalculations)")
    history: list[dict[str, Any]] = []
    if row is not None:
        history = [*(row.recalculations or []),
                   {"kind": "base year changed", "at": now.isoformat(), "by": caller.name,
                    "former_year": row.year, "former_set_by": row.set_by,
                    "former_set_at": row.set_at.isoformat(), "former_frozen": row.frozen}]
        db.delete(row)
        db.flush()
    row = BaseYear(site=equipment.site, equipment=equipment.id, year=body.year,
                   set_by=caller.name, set_at=now, frozen=frozen.model_dump(mode="json"),
                   recalculations=history)
    db.add(row)
    db.commit()
    return view(row, timezone=equipment.timezone, current=frozen)


@router.get(_PATH, response_model=BaseYearOut)
def get_base_year(request: Request, equipment: Equipment, db: Db, store: Store,
                  factors: Factors, gwp: Gwp, settings: Settings) -> BaseYearOut:
    """The frozen figures, the same year recalculated now, and for each figure that moved the
    reasons the api can prove (newer factor version, record edited/voided/added, readings)."""
    row = _stored(db, equipment)
    try:
        current = _year(request, equipment, db, store, factors, gwp, settings, row.year)
    except HTTPException as exc:
        return view(row, timezone=equipment.timezone, current=None, error=str(exc.detail))
    return view(row, timezone=equipment.timezone, current=current)


@router.post(f"{_PATH}/recalculations", response_model=BaseYearOut, status_code=201,
             dependencies=[ADMIN_ONLY])
def record_recalculation(request: Request, equipment: Equipment, db: Db, store: Store,
                         factors: Factors, gwp: Gwp, settings: Settings,
                         caller: Caller) -> BaseYearOut:
    """Record today's recalculation of the base year, with its reasons, after the frozen
    original (which stays as it is)."""
    row = _stored(db, equipment)
    current = _year(request, equipment, db, store, factors, gwp, settings, row.year)
    reasons = reasons_between(Snapshot.model_validate(row.frozen), current)
    row.recalculations = [*(row.recalculations or []), {
        "kind": "recalculation", "at": datetime.now(UTC).isoformat(), "by": caller.name,
        "reasons": [r.model_dump(mode="json") for r in reasons],
        "figures": current.model_dump(mode="json")}]
    db.commit()
    return view(row, timezone=equipment.timezone, current=current)
