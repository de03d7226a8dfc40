"""The one owner of record writes, for the api routes, the console and the command line.

Every change goes through here so that each keeps its rules and leaves its trace:
- `create` checks the record (its input model, then what the model cannot see: the
  equipment's campaigns and material lots, the factor and GWP tables), stores it at version 1
  and audits it; a second `create` with the same idempotency key returns the first record;
- `edit` replaces the editable fields of the version the caller started from: another version
  stored meanwhile raises `VersionConflict` and nothing is overwritten;
- `void` marks a record as not counting any more (with a reason): it stays stored and listed
  on request, no figure reads it (`api.records.live`);
- `purge` deletes it for good (admins only: the caller checks), and its audit rows stay.
Actors are `token:<name>` (api tokens) or `user:<login>` (console people); `via` is
`api`, `console` or `cli`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError
from sqlalchemy import and_, column, func, or_, select, table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from api.accounting.factors import FactorTable, UnknownFactor
from api.accounting.gwp import GwpTable
from api.records.kinds import KINDS, RecordKind
from api.records.tables import Record, RecordAudit
from api.records.validation import FORM, Lang, field_errors, invalid, rule
from api.sites import EquipmentInfo
from telemetry.units import UnitError, parse_unit

Via = Literal["api", "console", "cli"]
# Who a record belongs to: its equipment; the site's name for a site's records (electricity
# contracts: `RecordKind.per_site`); None for records of nobody (baselines).
Owner = EquipmentInfo | str | None
Action = Literal["create", "edit", "void", "purge"]


class RecordError(Exception):
    """A record write that cannot be done."""


class RecordNotFound(RecordError):
    """No record of that kind and id for that equipment (or it was purged)."""

    def __init__(self, kind: RecordKind, record_id: int | str,
                 equipment: Owner) -> None:
        where = (f" for {equipment.site}/{equipment.id}" if isinstance(equipment, EquipmentInfo)
                 else f" at site {equipment}" if equipment else "")
        super().__init__(f"no {kind.name} record {record_id}{where}")
        self.kind = kind
        self.record_id = record_id


class VersionConflict(RecordError):
    """The record changed since the version the caller started from: nothing was written."""

    def __init__(self, row: Record, expected: int) -> None:
        who = row.voided_by if row.voided_at else row.updated_by or row.created_by
        when = row.voided_at or row.updated_at or row.created_at
        super().__init__(f"modified in the meantime by {who} at {when.isoformat()}: version "
                         f"{row.version} is stored, the change started from {expected}; "
                         "reload it")
        self.current_version = row.version
        self.by = who
        self.at = when


class RecordInvalid(RecordError):
    """The values break a rule; `error` is the pydantic ValidationError (fields, messages)."""

    def __init__(self, error: ValidationError) -> None:
        super().__init__(str(error))
        self.error = error

    def field_errors(self, lang: Lang = "fr") -> dict[str, str]:
        return field_errors(self.error, lang)


class RecordDuplicate(RecordError):
    """Another record already holds a unique value (a campaign's or a baseline's name)."""


class RecordInUse(RecordError):
    """A published report rests on the record: it may be voided (the report's verification
    then names the void), never purged."""

    def __init__(self, kind: RecordKind, record_id: int, publications: list[str]) -> None:
        names = ", ".join(publications)
        super().__init__(
            f"impossible de supprimer définitivement {kind.name} {record_id} : le(s) rapport(s) "
            f"publié(s) {names} s'appuie(nt) dessus ; annulez-le plutôt / cannot purge "
            f"{kind.name} {record_id}: published report(s) {names} rest on it; void it instead")
        self.publications = publications


# The records published reports rest on (api.reports.publications owns the table; named here
# without importing it, the reports package importing the records one).
_PUBLISHED = table("publication_records", column("publication_id"), column("kind"),
                   column("record_id"))


@dataclass(frozen=True, slots=True)
class Catalog:
    """The tables a record is checked against beyond its own fields: the emission factors
    (material lots, baselines) and the refrigerants' GWPs (top-ups). The api passes its own
    (with the user's files); without one the shipped tables are used."""

    factors: FactorTable
    gwp: GwpTable


@cache
def shipped_catalog() -> Catalog:
    return Catalog(factors=FactorTable.load(), gwp=GwpTable.load())


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change of a record, as its history shows it."""

    id: int
    kind: str
    record_id: int
    site: str | None
    equipment: str | None
    action: Action
    actor: str
    via: Via
    at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str

    def changes(self) -> list[tuple[str, Any, Any]]:
        """(field, before, after) of each field that differs, in the record's field order."""
        before, after = self.before or {}, self.after or {}
        names = list(dict.fromkeys([*before, *after]))
        return [(n, before.get(n), after.get(n)) for n in names
                if before.get(n) != after.get(n)]


def _kind(kind: RecordKind | str) -> RecordKind:
    return kind if isinstance(kind, RecordKind) else KINDS[kind]


def _owned(kind: RecordKind, equipment: Owner) -> dict[str, str]:
    if kind.per_site:
        site = equipment.site if isinstance(equipment, EquipmentInfo) else equipment
        if not site:
            raise ValueError(f"{kind.name} belong to a site: name it")
        return {"site": site}
    if not kind.per_equipment:
        return {}
    if not isinstance(equipment, EquipmentInfo):
        raise ValueError(f"{kind.name} belong to an equipment: name it")
    return {"site": equipment.site, "equipment": equipment.id}


def _json(value: Any) -> Any:
    # Times in UTC, as stored: one instant reads the same before and after an edit.
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value.isoformat() if isinstance(value, date) else value


def snapshot(kind: RecordKind, row: Record) -> dict[str, Any]:
    """The record's content as its audit trail keeps it (JSON): its fields, its version and
    its void."""
    names = [*kind.input.model_fields, "version", "voided_at", "voided_by", "void_reason"]
    return {name: _json(getattr(row, name)) for name in names}


def _audit(db: Session, kind: RecordKind, row: Record, *, action: Action, actor: str,
           via: Via, before: dict[str, Any] | None, after: dict[str, Any] | None,
           reason: str = "") -> None:
    db.add(RecordAudit(kind=kind.name, record_id=row.id, site=getattr(row, "site", None),
                       equipment=getattr(row, "equipment", None), action=action, actor=actor,
                       via=via, at=datetime.now(UTC), before=before, after=after,
                       reason=reason))


def _get(db: Session, kind: RecordKind, record_id: int,
         equipment: Owner) -> Record:
    row = db.get(kind.table, record_id)
    owned = _owned(kind, equipment)
    if row is None or any(getattr(row, k) != v for k, v in owned.items()):
        raise RecordNotFound(kind, record_id, equipment)
    return row


def get(db: Session, kind: RecordKind | str, record_id: int, *,
        equipment: Owner) -> Record:
    """One record of the equipment, voided or not (RecordNotFound otherwise)."""
    return _get(db, _kind(kind), record_id, equipment)


def rows(db: Session, kind: RecordKind | str, *, equipment: Owner,
         include_voided: bool = False, newest_first: bool = False, limit: int | None = None,
         offset: int = 0) -> list[Record]:
    """The equipment's records of a kind (every baseline), oldest first (or newest first);
    `limit` and `offset` page through them in the database, not in Python."""
    k = _kind(kind)
    column, ident = getattr(k.table, k.order_by), k.table.id
    query = select(k.table).filter_by(**_owned(k, equipment)).order_by(
        *((column.desc(), ident.desc()) if newest_first else (column, ident)))
    if not include_voided:
        query = query.where(k.table.voided_at.is_(None))
    if limit is not None:
        query = query.limit(limit).offset(offset)
    return list(db.scalars(query))


def count(db: Session, kind: RecordKind | str, *, equipment: Owner,
          include_voided: bool = False, newer_than: Record | None = None) -> int:
    """How many records `rows` lists; with `newer_than`, how many come before that record
    when listed newest first (its position, to open the page it is on)."""
    k = _kind(kind)
    query = select(func.count()).select_from(k.table).filter_by(**_owned(k, equipment))
    if not include_voided:
        query = query.where(k.table.voided_at.is_(None))
    if newer_than is not None:
        column, mark = getattr(k.table, k.order_by), getattr(newer_than, k.order_by)
        query = query.where(or_(column > mark, and_(column == mark,
                                                    k.table.id > newer_than.id)))
    return int(db.scalar(query) or 0)


def _validated(kind: RecordKind, values: dict[str, Any]) -> BaseModel:
    try:
        return kind.input.model_validate(values)
    except ValidationError as exc:
        raise RecordInvalid(exc) from None


def _check_references(db: Session, kind: RecordKind, model: BaseModel,
                      equipment: Owner, catalog: Catalog | None) -> None:
    """The rules the input model cannot check alone: what it points at must exist (and be
    the equipment's, and live), its factor must fit, its refrigerant must have a GWP."""
    values = model.model_dump()
    errors: dict[str, PydanticCustomError] = {}
    tables = catalog or shipped_catalog()
    for field, target in (("campaign_id", "campaigns"), ("material_lot_id", "material_lots")):
        ref = values.get(field)
        if ref is None or field not in kind.input.model_fields:
            continue
        found = db.get(KINDS[target].table, ref)
        owned = _owned(KINDS[target], equipment)
        if (found is None or found.voided_at is not None
                or any(getattr(found, k) != v for k, v in owned.items())):
            errors[field] = rule("unknown_reference", kind=target, id=ref,
                                 site=owned.get("site", ""),
                                 equipment=owned.get("equipment", ""))
    if kind.name == "refrigerant_top_ups":
        name = values["refrigerant"]
        if not any(_has_gwp(tables.gwp, name, report) for report in tables.gwp.reports):
            errors["refrigerant"] = rule("unknown_refrigerant", refrigerant=name)
    if kind.name == "material_lots":
        zone = ZoneInfo(equipment.timezone) if isinstance(equipment, EquipmentInfo) else UTC
        on = values["received_at"].astimezone(zone).date()
        try:
            factor = tables.factors.get(values["factor_id"], on=on)
        except UnknownFactor as exc:
            errors["factor_id"] = rule("unknown_factor", detail=str(exc),
                                       factor=values["factor_id"])
        else:
            if factor.activity_unit != "kg":
                errors["factor_id"] = rule("factor_unit", factor=factor.id,
                                           unit=factor.activity_unit,
                                           needed="a material lot needs one per kg")
    if kind.name == "baselines":
        if not tables.factors.versions(values["factor_id"]):
            errors["factor_id"] = rule("unknown_factor", factor=values["factor_id"],
                                       detail=f"unknown emission factor "
                                              f"'{values['factor_id']}'")
        try:
            parse_unit(values["activity_unit"])
        except UnitError as exc:
            errors["activity_unit"] = rule("activity_unit", detail=str(exc))
    if errors:
        raise RecordInvalid(invalid(kind.input.__name__, errors, values))


def _has_gwp(gwp: GwpTable, refrigerant: str, report: str) -> bool:
    try:
        gwp.gwp(refrigerant, report=report)
    except LookupError:
        return False
    return True


def _by_key(db: Session, kind: RecordKind, key: str,
            equipment: Owner) -> Record | None:
    owned = _owned(kind, equipment)
    query = select(kind.table).filter_by(idempotency_key=key)
    if "site" in owned:
        query = query.filter_by(site=owned["site"])
    return db.scalars(query).first()


def _commit(db: Session) -> None:
    try:
        db.commit()
    except IntegrityError as exc:
        db.rollback()
        raise RecordDuplicate(f"conflicts with a stored record: {exc.orig}") from None


def create(db: Session, kind: RecordKind | str, values: dict[str, Any], *,
           equipment: Owner, actor: str, via: Via,
           idempotency_key: str | None = None, catalog: Catalog | None = None) -> Record:
    """Store a new record (version 1) and its `create` audit entry. With an idempotency key
    already used on the site for this kind, the first record is returned and nothing is
    created. Raises RecordInvalid, RecordDuplicate."""
    k = _kind(kind)
    if idempotency_key is not None:
        found = _by_key(db, k, idempotency_key, equipment)
        if found is not None:
            return found
    model = _validated(k, values)
    _check_references(db, k, model, equipment, catalog)
    row = k.table(**_owned(k, equipment), **model.model_dump())
    row.created_at = datetime.now(UTC)
    row.created_by = actor
    row.idempotency_key = idempotency_key
    db.add(row)
    try:
        db.flush()
    except IntegrityError as exc:
        db.rollback()
        # The same key stored meanwhile by a concurrent request (a double click): its record.
        found = _by_key(db, k, idempotency_key, equipment) if idempotency_key else None
        if found is not None:
            return found
        raise RecordDuplicate(f"conflicts with a stored record: {exc.orig}") from None
    _audit(db, k, row, action="create", actor=actor, via=via, before=None,
           after=snapshot(k, row))
    _commit(db)
    db.refresh(row)
    return row


def edit(db: Session, kind: RecordKind | str, record_id: int, values: dict[str, Any], *,
         equipment: Owner, expected_version: int, actor: str, via: Via,
         reason: str = "", catalog: Catalog | None = None) -> Record:
    """Replace the editable fields of a record, if it is still at `expected_version`; the
    version goes up by one and the change is audited (before and after). Raises
    RecordNotFound, VersionConflict (nothing written), RecordInvalid, RecordDuplicate."""
    k = _kind(kind)
    row = _get(db, k, record_id, equipment)
    if row.version != expected_version:
        raise VersionConflict(row, expected_version)
    if row.voided_at is not None:
        raise RecordInvalid(invalid(k.input.__name__, {FORM: rule(
            "voided", kind=k.name, id=record_id)}, {}))
    model = _validated(k, values)
    _check_references(db, k, model, equipment, catalog)
    before = snapshot(k, row)
    new = model.model_dump()
    if all(before[name] == _json(value) for name, value in new.items()):
        return row  # nothing changed: no new version, no audit entry
    for name, value in new.items():
        setattr(row, name, value)
    row.updated_at = datetime.now(UTC)
    row.updated_by = actor
    _flush_versioned(db, k, row, record_id, equipment, expected_version)
    _audit(db, k, row, action="edit", actor=actor, via=via, before=before,
           after=snapshot(k, row), reason=reason)
    _commit(db)
    db.refresh(row)
    return row


def _flush_versioned(db: Session, kind: RecordKind, row: Record, record_id: int,
                     equipment: Owner, expected: int) -> None:
    """Write the change; another writer's version stored since we read turns into a
    VersionConflict (the ORM's UPDATE … WHERE version = … matched nothing)."""
    try:
        db.flush()
    except StaleDataError:
        db.rollback()
        raise VersionConflict(_get(db, kind, record_id, equipment), expected) from None


def void(db: Session, kind: RecordKind | str, record_id: int, *,
         equipment: Owner, actor: str, via: Via, reason: str,
         expected_version: int | None = None) -> Record:
    """Mark a record as not counting any more (reason required); it stays stored, listed on
    request, and in its history. Voiding a voided record changes nothing."""
    k = _kind(kind)
    if not reason.strip():
        raise RecordInvalid(invalid("void", {"reason": rule(
            "required_for_kind", field="reason", kind="void")}, {"reason": reason}))
    row = _get(db, k, record_id, equipment)
    if expected_version is not None and row.version != expected_version:
        raise VersionConflict(row, expected_version)
    if row.voided_at is not None:
        return row
    before = snapshot(k, row)
    row.voided_at = datetime.now(UTC)
    row.voided_by = actor
    row.void_reason = reason.strip()
    _flush_versioned(db, k, row, record_id, equipment, row.version)
    _audit(db, k, row, action="void", actor=actor, via=via, before=before,
           after=snapshot(k, row), reason=reason.strip())
    _commit(db)
    db.refresh(row)
    return row


def purge(db: Session, kind: RecordKind | str, record_id: int, *,
          equipment: Owner, actor: str, via: Via, reason: str) -> None:
    """Delete a record for good — admins only, which the caller checks — unless a published
    report rests on it (`RecordInUse`). The deletion is audited with the record's last
    content, and its earlier audit entries stay."""
    k = _kind(kind)
    row = _get(db, k, record_id, equipment)
    published = sorted(db.scalars(select(_PUBLISHED.c.publication_id).where(
        _PUBLISHED.c.kind == k.name, _PUBLISHED.c.record_id == record_id)).all())
    if published:
        raise RecordInUse(k, record_id, published)
    before = snapshot(k, row)
    _audit(db, k, row, action="purge", actor=actor, via=via, before=before, after=None,
           reason=reason.strip())
    db.delete(row)
    _commit(db)


def history(db: Session, kind: RecordKind | str, record_id: int, *,
            equipment: Owner = None) -> list[AuditEntry]:
    """Every change of a record, oldest first (also after a purge); with `equipment`, only
    if the record was that equipment's."""
    k = _kind(kind)
    query = select(RecordAudit).filter_by(kind=k.name, record_id=record_id)
    owned = _owned(k, equipment) if equipment is not None else {}
    if owned:
        query = query.filter_by(**owned)
    found = db.scalars(query.order_by(RecordAudit.at, RecordAudit.id))
    return [AuditEntry(id=a.id, kind=a.kind, record_id=a.record_id, site=a.site,
                       equipment=a.equipment, action=cast(Action, a.action), actor=a.actor,
                       via=cast(Via, a.via), at=a.at, before=a.before, after=a.after,
                       reason=a.reason) for a in found]
