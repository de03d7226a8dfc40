"""Production records of an equipment: campaigns, batches, material lots, refrigerant top-ups;
and the baselines avoided emissions are computed against."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Path, Query, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.accounting.factors import UnknownFactor
from api.deps import EVALUATOR_WRITES, OPERATOR_WRITES, Db, Equipment, Factors
from api.periods import PeriodError, check_moment
from api.records.tables import Base, Baseline, Batch, Campaign, MaterialLot, RefrigerantTopUp
from api.schemas import (
    BaselineIn,
    BaselineOut,
    BatchIn,
    BatchOut,
    CampaignIn,
    CampaignOut,
    MaterialLotIn,
    MaterialLotOut,
    RefrigerantTopUpIn,
    RefrigerantTopUpOut,
)
from api.sites import EquipmentInfo
from telemetry.units import UnitError, parse_unit

router = APIRouter(tags=["records"])

R = TypeVar("R", bound=Base)
_EQ = "/sites/{site}/equipment/{equipment}"
_NAME = r"^[a-z0-9][a-z0-9._-]{0,79}$"


def _add(db: Session, row: R) -> R:
    db.add(row)
    try:
        db.commit()
    except IntegrityError as exc:
        db.rollback()
        raise HTTPException(409, f"conflicts with a stored record: {exc.orig}") from None
    db.refresh(row)
    return row


def _one(db: Session, model: type[R], record_id: int, equipment: EquipmentInfo) -> R:
    row = db.get(model, record_id)
    if row is None or (getattr(row, "site", None), getattr(row, "equipment", None)) != (
            equipment.site, equipment.id):
        raise HTTPException(404, f"no {model.__tablename__} record {record_id} for "
                                 f"{equipment.site}/{equipment.id}")
    return row


def _remove(db: Session, model: type[R], record_id: int, equipment: EquipmentInfo) -> Response:
    """Delete one of the equipment's records (404 when it is not one of them)."""
    db.delete(_one(db, model, record_id, equipment))
    db.commit()
    return Response(status_code=204)


def _owned(equipment: EquipmentInfo) -> dict[str, Any]:
    return {"site": equipment.site, "equipment": equipment.id}


# --- campaigns ------------------------------------------------------------------------------

@router.post(f"{_EQ}/campaigns", response_model=CampaignOut, status_code=201,
             dependencies=[OPERATOR_WRITES])
def create_campaign(equipment: Equipment, db: Db, body: CampaignIn) -> Campaign:
    return _add(db, Campaign(**_owned(equipment), **body.model_dump()))


@router.get(f"{_EQ}/campaigns", response_model=list[CampaignOut])
def list_campaigns(equipment: Equipment, db: Db) -> list[Campaign]:
    return list(db.scalars(select(Campaign).filter_by(**_owned(equipment))
                           .order_by(Campaign.started_at)))


@router.get(f"{_EQ}/campaigns/{{record_id}}", response_model=CampaignOut)
def get_campaign(equipment: Equipment, db: Db, record_id: int) -> Campaign:
    return _one(db, Campaign, record_id, equipment)


@router.delete(f"{_EQ}/campaigns/{{record_id}}", status_code=204, dependencies=[OPERATOR_WRITES])
def delete_campaign(equipment: Equipment, db: Db, record_id: int) -> Response:
    return _remove(db, Campaign, record_id, equipment)


# --- batches --------------------------------------------------------------------------------

@router.post(f"{_EQ}/batches", response_model=BatchOut, status_code=201,
             dependencies=[OPERATOR_WRITES])
def create_batch(equipment: Equipment, db: Db, body: BatchIn) -> Batch:
    if body.campaign_id is not None:
        _one(db, Campaign, body.campaign_id, equipment)
    return _add(db, Batch(**_owned(equipment), **body.model_dump()))


@router.get(f"{_EQ}/batches", response_model=list[BatchOut])
def list_batches(
    equipment: Equipment, db: Db,
    start: Annotated[datetime | None, Query(description="batches ending after this")] = None,
    end: Annotated[datetime | None, Query(description="batches starting before this")] = None,
    campaign_id: int | None = None,
) -> list[Batch]:
    """Batches overlapping `[start, end)`, oldest first."""
    query = select(Batch).filter_by(**_owned(equipment)).order_by(Batch.started_at)
    for name, moment in (("start", start), ("end", end)):
        if moment is not None:
            try:
                check_moment(moment, name)
            except PeriodError as exc:
                raise HTTPException(422, str(exc)) from None
    if start is not None:
        query = query.where(Batch.ended_at > start)
    if end is not None:
        query = query.where(Batch.started_at < end)
    if campaign_id is not None:
        query = query.where(Batch.campaign_id == campaign_id)
    return list(db.scalars(query))


@router.get(f"{_EQ}/batches/{{record_id}}", response_model=BatchOut)
def get_batch(equipment: Equipment, db: Db, record_id: int) -> Batch:
    return _one(db, Batch, record_id, equipment)


@router.put(f"{_EQ}/batches/{{record_id}}", response_model=BatchOut, dependencies=[OPERATOR_WRITES])
def replace_batch(equipment: Equipment, db: Db, record_id: int, body: BatchIn) -> Batch:
    row = _one(db, Batch, record_id, equipment)
    if body.campaign_id is not None:
        _one(db, Campaign, body.campaign_id, equipment)
    for key, value in body.model_dump().items():
        setattr(row, key, value)
    return _add(db, row)


@router.delete(f"{_EQ}/batches/{{record_id}}", status_code=204, dependencies=[OPERATOR_WRITES])
def delete_batch(equipment: Equipment, db: Db, record_id: int) -> Response:
    return _remove(db, Batch, record_id, equipment)


# --- material lots --------------------------------------------------------------------------

@router.post(f"{_EQ}/material-lots", response_model=MaterialLotOut, status_code=201,
             dependencies=[OPERATOR_WRITES])
def create_material_lot(equipment: Equipment, db: Db, factors: Factors,
                        body: MaterialLotIn) -> MaterialLot:
    try:
        factor = factors.get(body.factor_id, on=body.received_at.date())
    except UnknownFactor as exc:
        raise HTTPException(422, str(exc)) from None
    if factor.activity_unit != "kg":
        raise HTTPException(422, f"factor {factor.id} is per {factor.activity_unit}, "
                                 "a material lot needs one per kg")
    return _add(db, MaterialLot(**_owned(equipment), **body.model_dump()))


@router.get(f"{_EQ}/material-lots", response_model=list[MaterialLotOut])
def list_material_lots(equipment: Equipment, db: Db) -> list[MaterialLot]:
    return list(db.scalars(select(MaterialLot).filter_by(**_owned(equipment))
                           .order_by(MaterialLot.received_at)))


@router.delete(f"{_EQ}/material-lots/{{record_id}}", status_code=204,
             dependencies=[OPERATOR_WRITES])
def delete_material_lot(equipment: Equipment, db: Db, record_id: int) -> Response:
    return _remove(db, MaterialLot, record_id, equipment)


# --- refrigerant top-ups --------------------------------------------------------------------

@router.post(f"{_EQ}/refrigerant-top-ups", response_model=RefrigerantTopUpOut, status_code=201,
             dependencies=[OPERATOR_WRITES])
def create_top_up(equipment: Equipment, db: Db, body: RefrigerantTopUpIn) -> RefrigerantTopUp:
    return _add(db, RefrigerantTopUp(**_owned(equipment), **body.model_dump()))


@router.get(f"{_EQ}/refrigerant-top-ups", response_model=list[RefrigerantTopUpOut])
def list_top_ups(equipment: Equipment, db: Db) -> list[RefrigerantTopUp]:
    return list(db.scalars(select(RefrigerantTopUp).filter_by(**_owned(equipment))
                           .order_by(RefrigerantTopUp.at)))


@router.delete(f"{_EQ}/refrigerant-top-ups/{{record_id}}", status_code=204,
             dependencies=[OPERATOR_WRITES])
def delete_top_up(equipment: Equipment, db: Db, record_id: int) -> Response:
    return _remove(db, RefrigerantTopUp, record_id, equipment)


# --- baselines ------------------------------------------------------------------------------

@router.post("/baselines", response_model=BaselineOut, status_code=201,
             dependencies=[EVALUATOR_WRITES])
def create_baseline(db: Db, factors: Factors, body: BaselineIn) -> Baseline:
    if not any(f.id == body.factor_id for f in factors.factors):
        raise HTTPException(422, f"unknown emission factor {body.factor_id!r}")
    try:
        parse_unit(body.activity_unit)
    except UnitError as exc:
        raise HTTPException(422, f"activity_unit: {exc}") from None
    return _add(db, Baseline(**body.model_dump()))


@router.get("/baselines", response_model=list[BaselineOut])
def list_baselines(db: Db) -> list[Baseline]:
    return list(db.scalars(select(Baseline).order_by(Baseline.name)))


@router.get("/baselines/{name}", response_model=BaselineOut)
def get_baseline(db: Db, name: Annotated[str, Path(pattern=_NAME)]) -> Baseline:
    row = db.scalars(select(Baseline).filter_by(name=name)).first()
    if row is None:
        raise HTTPException(404, f"no baseline {name!r}")
    return row
