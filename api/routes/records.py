"""Production records of an equipment — campaigns, batches, material lots, refrigerant
top-ups, manual activity data — and the baselines avoided emissions are computed against.

The routes are generated from the record kinds (`api.records.kinds`) and write through the
records service (`api.records.service`): every record has a version (an edit names the one it
started from, a race answers 409), an audit trail (`…/history`), and is voided rather than
deleted (`DELETE`; an admin may purge with `?purge=true`). `POST` honours an
`Idempotency-Key` header: the same key on the same site creates one record.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Response
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, create_model
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.access.tokens import Principal, TokenRole
from api.deps import Caller, Db, Equipment, Factors, Gwp, require
from api.periods import PeriodError, check_moment
from api.records import service
from api.records.kinds import BASELINES, BATCHES, KINDS, RecordKind
from api.records.live import live
from api.records.service import (
    Catalog,
    RecordDuplicate,
    RecordError,
    RecordInUse,
    RecordInvalid,
    RecordNotFound,
    VersionConflict,
)
from api.records.tables import Baseline, Batch, Record
from api.schemas import AuditOut, BaselineIn, BatchOut
from api.sites import EquipmentInfo

router = APIRouter(tags=["records"])

_EQ = "/sites/{site}/equipment/{equipment}"
_NAME = r"^[a-z0-9][a-z0-9._-]{0,79}$"
_VOID_REASON = "voided through the api"
_PURGE_REASON = "purged through the api"

IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=200,
    description="a key of the client's choosing: the same key on the same site creates one "
                "record (a retried or double-sent request returns the first one)")]
IfMatch = Annotated[str | None, Header(
    alias="If-Match", description="the record's version, when the body does not carry it")]
IncludeVoided = Annotated[bool, Query(description="list voided records too")]
Reason = Annotated[str | None, Query(max_length=2000, description="why it is voided")]
Purge = Annotated[bool, Query(description="delete for good (admin only; audited)")]


def _actor(caller: Principal) -> str:
    return f"token:{caller.name}"


def _catalog(factors: Factors, gwp: Gwp) -> Catalog:
    return Catalog(factors=factors, gwp=gwp)


Tables = Annotated[Catalog, Depends(_catalog)]


def _http(exc: RecordError) -> HTTPException:
    """A records service error as the api answers it."""
    if isinstance(exc, RecordNotFound):
        return HTTPException(404, str(exc))
    if isinstance(exc, VersionConflict):
        return HTTPException(409, {"message": str(exc), "current_version": exc.current_version})
    if isinstance(exc, RecordInvalid):
        errors = exc.error.errors(include_url=False, include_context=False)
        for error in errors:
            error["loc"] = ("body", *error["loc"])
        return HTTPException(422, jsonable_encoder(errors))
    if isinstance(exc, RecordDuplicate | RecordInUse):
        return HTTPException(409, str(exc))
    return HTTPException(400, str(exc))


def _version(body_version: int | None, if_match: str | None) -> int:
    if body_version is not None:
        return body_version
    found = re.fullmatch(r'\s*(?:W/)?"?(\d{1,9})"?\s*', if_match or "")
    if found is None:
        raise HTTPException(428, "send the record's version (field `version`, or If-Match): "
                                 "an edit must name the version it started from")
    return int(found.group(1))


def _edit_model(kind: RecordKind) -> type[BaseModel]:
    """The PUT body: the kind's input fields plus the version the edit started from."""
    model: type[BaseModel] = create_model(
        f"{kind.input.__name__.removesuffix('In')}Edit", __base__=kind.input,
        version=(int | None, None))
    return model


def _as_out(kind: RecordKind, row: Record) -> Any:
    return kind.output.model_validate(row, from_attributes=True)


def _writers(kind: RecordKind) -> Callable[[Principal], Principal]:
    return require(kind.writer)


def _admit_purge(caller: Principal, purge: bool) -> None:
    if purge and caller.role is not TokenRole.ADMIN:
        raise HTTPException(403, "only an admin token may purge a record")


def _equipment_routes(kind: RecordKind) -> None:
    """POST, GET (list and one), PUT, DELETE and history of one per-equipment kind."""
    base = f"{_EQ}/{kind.slug}"
    one = f"{base}/{{record_id}}"
    edit_model = _edit_model(kind)
    writers = [Depends(_writers(kind))]

    def create_record(equipment: Equipment, db: Db, caller: Caller, tables: Tables,
                      body: BaseModel, idempotency_key: IdempotencyKey = None) -> Any:
        try:
            row = service.create(db, kind, body.model_dump(), equipment=equipment,
                                 actor=_actor(caller), via="api",
                                 idempotency_key=idempotency_key, catalog=tables)
        except RecordError as exc:
            raise _http(exc) from None
        return _as_out(kind, row)

    def list_records(equipment: Equipment, db: Db, include_voided: IncludeVoided = False
                     ) -> list[Any]:
        return [_as_out(kind, r) for r in service.rows(db, kind, equipment=equipment,
                                                       include_voided=include_voided)]

    def get_record(equipment: Equipment, db: Db, record_id: int) -> Any:
        try:
            return _as_out(kind, service.get(db, kind, record_id, equipment=equipment))
        except RecordError as exc:
            raise _http(exc) from None

    def replace_record(equipment: Equipment, db: Db, caller: Caller, tables: Tables,
                       record_id: int, body: BaseModel, if_match: IfMatch = None) -> Any:
        values = body.model_dump()
        expected = _version(values.pop("version", None), if_match)
        try:
            row = service.edit(db, kind, record_id, values, equipment=equipment,
                               expected_version=expected, actor=_actor(caller), via="api",
                               catalog=tables)
        except RecordError as exc:
            raise _http(exc) from None
        return _as_out(kind, row)

    def delete_record(equipment: Equipment, db: Db, caller: Caller, record_id: int,
                      reason: Reason = None, purge: Purge = False) -> Response:
        _admit_purge(caller, purge)
        _remove(db, kind, record_id, equipment=equipment, caller=caller, reason=reason,
                purge=purge)
        return Response(status_code=204)

    def record_history(equipment: Equipment, db: Db, record_id: int) -> list[AuditOut]:
        return _history(db, kind, record_id, equipment)

    create_record.__annotations__["body"] = kind.input
    replace_record.__annotations__["body"] = edit_model
    label = kind.name.replace("_", " ")
    router.post(base, response_model=kind.output, status_code=201, dependencies=writers,
                summary=f"Create one of the equipment's {label}")(create_record)
    if kind is not BATCHES:  # batches have their own list, with filters (below)
        router.get(base, response_model=list[kind.output],  # type: ignore[name-defined]
                   summary=f"The equipment's {label}, oldest first")(list_records)
    router.get(one, response_model=kind.output,
               summary=f"One of the equipment's {label} (voided ones too)")(get_record)
    router.put(one, response_model=kind.output, dependencies=writers,
               summary=f"Replace the fields of one of the equipment's {label}",
               description="Full replacement of the editable fields, from the version named "
                           "in the body (`version`) or an `If-Match` header: 409 when the "
                           "record changed meanwhile, and nothing is overwritten.")(
        replace_record)
    router.delete(one, status_code=204, dependencies=writers,
                  summary=f"Void one of the equipment's {label}",
                  description="The record stays stored and in its history but no figure "
                              "counts it any more; `?purge=true` (admin) deletes it for "
                              "good, audited.")(delete_record)
    router.get(f"{one}/history", response_model=list[AuditOut],
               summary=f"The audit trail of one of the equipment's {label}")(record_history)


def _remove(db: Session, kind: RecordKind, record_id: int, *,
            equipment: EquipmentInfo | None, caller: Principal, reason: str | None,
            purge: bool) -> None:
    try:
        if purge:
            service.purge(db, kind, record_id, equipment=equipment, actor=_actor(caller),
                          via="api", reason=reason or _PURGE_REASON)
        else:
            service.void(db, kind, record_id, equipment=equipment, actor=_actor(caller),
                         via="api", reason=reason or _VOID_REASON)
    except RecordError as exc:
        raise _http(exc) from None


def _history(db: Session, kind: RecordKind, record_id: int,
             equipment: EquipmentInfo | None) -> list[AuditOut]:
    entries = service.history(db, kind, record_id, equipment=equipment)
    if not entries:
        raise _http(RecordNotFound(kind, record_id, equipment))
    return [AuditOut.model_validate(e, from_attributes=True) for e in entries]


for _kind in KINDS.values():
    if _kind.per_equipment:
        _equipment_routes(_kind)


@router.get(f"{_EQ}/batches", response_model=list[BatchOut])
def list_batches(
    equipment: Equipment, db: Db,
    start: Annotated[datetime | None, Query(description="batches ending after this")] = None,
    end: Annotated[datetime | None, Query(description="batches starting before this")] = None,
    campaign_id: int | None = None,
    include_voided: IncludeVoided = False,
) -> list[Batch]:
    """Batches overlapping `[start, end)`, oldest first."""
    query = (select(Batch) if include_voided else live(Batch)).filter_by(
        site=equipment.site, equipment=equipment.id).order_by(Batch.started_at, Batch.id)
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


# --- baselines: evaluator-managed, named, not per equipment ------------------------------

class BaselineEdit(BaselineIn):
    version: int | None = None


_BaselineName = Annotated[str, Path(pattern=_NAME)]
_BASELINE_WRITERS = [Depends(require(BASELINES.writer))]


def _baseline_id(db: Session, name: str) -> int:
    found = next((r for r in service.rows(db, BASELINES, equipment=None, include_voided=True)
                  if isinstance(r, Baseline) and r.name == name), None)
    if found is None:
        raise HTTPException(404, f"no baseline {name!r}")
    return found.id


@router.post("/baselines", response_model=BASELINES.output, status_code=201,
             dependencies=_BASELINE_WRITERS)
def create_baseline(db: Db, caller: Caller, tables: Tables,
                    body: BaselineIn, idempotency_key: IdempotencyKey = None) -> Any:
    try:
        row = service.create(db, BASELINES, body.model_dump(), equipment=None, actor=_actor(caller),
                             via="api", idempotency_key=idempotency_key, catalog=tables)
    except RecordError as exc:
        raise _http(exc) from None
    return _as_out(BASELINES, row)


@router.get("/baselines", response_model=list[BASELINES.output])  # type: ignore[name-defined]
def list_baselines(db: Db, include_voided: IncludeVoided = False) -> list[Any]:
    return [_as_out(BASELINES, r) for r in service.rows(db, BASELINES, equipment=None,
                                                        include_voided=include_voided)]


@router.get("/baselines/{name}", response_model=BASELINES.output)
def get_baseline(db: Db, name: _BaselineName) -> Any:
    return _as_out(BASELINES, service.get(db, BASELINES, _baseline_id(db, name),
                                          equipment=None))


@router.put("/baselines/{name}", response_model=BASELINES.output,
            dependencies=_BASELINE_WRITERS)
def replace_baseline(db: Db, caller: Caller, tables: Tables, name: _BaselineName,
                     body: BaselineEdit, if_match: IfMatch = None) -> Any:
    values = body.model_dump()
    expected = _version(values.pop("version", None), if_match)
    try:
        row = service.edit(db, BASELINES, _baseline_id(db, name), values, equipment=None,
                           expected_version=expected, actor=_actor(caller), via="api",
                           catalog=tables)
    except RecordError as exc:
        raise _http(exc) from None
    return _as_out(BASELINES, row)


@router.delete("/baselines/{name}", status_code=204, dependencies=_BASELINE_WRITERS)
def delete_baseline(db: Db, caller: Caller, name: _BaselineName, reason: Reason = None,
                    purge: Purge = False) -> Response:
    _admit_purge(caller, purge)
    _remove(db, BASELINES, _baseline_id(db, name), equipment=None, caller=caller,
            reason=reason, purge=purge)
    return Response(status_code=204)


@router.get("/baselines/{name}/history", response_model=list[AuditOut])
def baseline_history(db: Db, name: _BaselineName) -> list[AuditOut]:
    return _history(db, BASELINES, _baseline_id(db, name), None)
