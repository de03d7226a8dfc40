"""Production records in the console: list, create, edit, void and history of every record kind,
generated from the kinds table (`api.records.kinds`): one set of pages, not one per kind.

Every write goes through `api.records.service`, like the api's: the same validation (its French
messages shown next to the field), versions (an edit that races another is refused), the
idempotency key (a double click stores one record) and the audit trail. Datetimes are typed in
the site's local time and stored in UTC.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from api.access.tokens import TokenRole
from api.accounting.factors import FactorTable
from api.accounting.gwp import GwpTable
from api.console.auth import ConsoleRefusal, CsrfChecked, CurrentPerson, Person
from api.console.i18n import Lang, translate, typed_number
from api.console.render import lang_of, moment, page
from api.deps import IDENT, Db
from api.records import service
from api.records.kinds import BY_SLUG, FieldSpec, RecordKind, kinds_for
from api.records.live import live
from api.records.tables import Campaign, MaterialLot
from api.records.validation import field_errors
from api.reports.language import number
from api.sites import EquipmentInfo, SiteRegistry

router = APIRouter()

_BASE = "/registres/{site}/{equipment}/{kind}"
_Site = Annotated[str, Path(pattern=IDENT)]
_Kind = Annotated[str, Path(pattern=r"^[a-z][a-z-]{0,39}$")]


# --- what the pages need to know about a kind's fields ------------------------------------

@dataclass(frozen=True, slots=True)
class Field:
    """One input of a form, as the template draws it."""

    name: str
    label: str
    input_type: str  # text, number, datetime-local, select, textarea
    unit: str
    required: bool
    step: str | None
    min: str | None
    max: str | None
    max_length: int | None
    help: str
    choices: list[tuple[str, str]]
    when: tuple[str, frozenset[str]] | None


def _bound(value: float | None) -> str | None:
    return None if value is None else f"{value:g}"


def _choices(spec: FieldSpec, request: Request, db: Session, equipment: EquipmentInfo,
             lang: Lang) -> list[tuple[str, str]]:
    """A select's options: fixed in the kinds table, or read from where the field refers."""
    if spec.ref == "campaigns":
        return [(str(r.id), f"{r.name} (n° {r.id})") for r in db.scalars(
            live(Campaign).filter_by(site=equipment.site, equipment=equipment.id)
            .order_by(Campaign.started_at.desc()))]
    if spec.ref == "material_lots":
        return [(str(r.id), f"{r.material} — {r.supplier or '?'} — "
                            f"{shown(r.received_at, lang, equipment.timezone)} (n° {r.id})")
                for r in db.scalars(
                    live(MaterialLot).filter_by(site=equipment.site, equipment=equipment.id)
                    .order_by(MaterialLot.received_at.desc()))]
    if spec.ref == "refrigerants":
        gwp: GwpTable = request.app.state.gwp
        return [(name, name) for name in gwp.refrigerants()]
    if spec.ref in ("factors_per_kg", "factors"):
        factors: FactorTable = request.app.state.factors
        ids = dict.fromkeys(f.id for f in factors.factors
                            if spec.ref == "factors" or f.activity_unit == "kg")
        return [(i, i) for i in ids]
    return []


def fields_of(kind: RecordKind, equipment: EquipmentInfo, lang: Lang, *,
              request: Request | None = None, db: Session | None = None) -> list[Field]:
    """The kind's form fields for this equipment, in the order of the kinds table; the
    choices of selects are read only when `request` and `db` are given (forms)."""
    found: list[Field] = []
    for spec in kind.fields_for(equipment.kind):
        if spec.choices:
            choices = [(c.value, c.label(lang)) for c in spec.choices]
        elif spec.input == "select" and request is not None and db is not None:
            choices = _choices(spec, request, db, equipment, lang)
        else:
            choices = []
        found.append(Field(
            name=spec.name, label=spec.label(lang), input_type=spec.input,
            unit=spec.unit or "", required=spec.required, step=_bound(spec.step),
            min=_bound(spec.min), max=_bound(spec.max), max_length=spec.max_length,
            help=spec.help(lang), choices=choices, when=spec.when))
    return found


def may_write(person: Person, kind: RecordKind) -> bool:
    """Operators write the operators' kinds; evaluators the evaluators'; admins everything."""
    return person.role is TokenRole.ADMIN or person.role is kind.writer


# --- lookups that answer 404 --------------------------------------------------------------

def _registry(request: Request) -> SiteRegistry:
    registry: SiteRegistry = request.app.state.registry
    return registry


Registry = Annotated[SiteRegistry, Depends(_registry)]


def _equipment(person: Person, registry: SiteRegistry, site: str, equipment: str
               ) -> EquipmentInfo:
    found = registry.get(site, equipment) if person.may_see(site) else None
    if found is None:
        # A site out of the person's scope looks exactly like one that does not exist.
        raise HTTPException(404)
    return found


def _kind(equipment: EquipmentInfo, slug: str) -> RecordKind:
    kind = BY_SLUG.get(slug)
    if kind is None or equipment.kind not in kind.equipment_kinds:
        raise HTTPException(404)
    return kind


def _row(db: Session, kind: RecordKind, equipment: EquipmentInfo, record_id: int) -> Any:
    row = db.get(kind.table, record_id)
    if row is None or (getattr(row, "site", None), getattr(row, "equipment", None)) != (
            equipment.site, equipment.id):
        raise HTTPException(404)
    return row


# --- values between the form, the database and the page ------------------------------------

def parse_local(text: str, zone: str) -> datetime | None:
    """A `datetime-local` value read in the site's zone (stored in UTC); None if unreadable."""
    try:
        naive = datetime.fromisoformat(text)
    except ValueError:
        return None
    if naive.tzinfo is not None:
        return naive
    return naive.replace(tzinfo=ZoneInfo(zone))


def to_values(form: dict[str, str], fields: list[Field], zone: str
              ) -> tuple[dict[str, Any], dict[str, str]]:
    """The values for the record service, and the fields the console could not even read
    (the key of their message). Empty fields and fields that do not apply (a delivery's fields
    on a meter reading) are left out: the schema's default, or its 'required', applies."""
    values: dict[str, Any] = {}
    unreadable: dict[str, str] = {}
    for field in fields:
        raw = form.get(field.name, "").strip()
        if raw == "":
            continue
        if field.when is not None and form.get(field.when[0], "") not in field.when[1]:
            continue
        if field.input_type == "datetime-local":
            moment = parse_local(raw, zone)
            if moment is None:
                unreadable[field.name] = "records.bad_datetime"
            else:
                values[field.name] = moment
        elif field.input_type == "number":
            cleaned = typed_number(raw)
            try:
                float(cleaned)
            except ValueError:
                unreadable[field.name] = "records.bad_number"
                continue
            values[field.name] = cleaned
        else:
            values[field.name] = raw
    return values, unreadable


def form_value(value: Any, zone: str) -> str:
    """A stored value as the form shows it."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(getattr(value, "value", value))


def shown(value: Any, lang: Lang, zone: str) -> str:
    """A stored value as a page shows it: French numbers, local times."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str) and len(value) >= 16 and value[4:5] == "-" and "T" in value:
        try:  # a datetime of the audit trail's JSON
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        return moment(value, lang, ZoneInfo(zone) if value.tzinfo else None)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        digits = 0 if float(value).is_integer() else 3
        text = number(float(value), digits=digits, lang=lang)
        if digits:  # 12,500 → 12,5
            text = text.rstrip("0")
        return text
    return str(getattr(value, "value", value))


def who(actor: str | None) -> str:
    """`user:marie` → `marie`: the audit's actor as an operator reads it."""
    if not actor:
        return "?"
    return actor.split(":", 1)[1] if ":" in actor else actor


def _form_data(raw: Any) -> dict[str, str]:
    return {key: value for key, value in raw.items() if isinstance(value, str)}


def _error_map(exc: service.RecordInvalid, lang: Lang, fields: list[Field]) -> dict[str, str]:
    """The record service's refusal as one message per field ('' for the whole form)."""
    cause = exc.error
    names = {f.name for f in fields}
    found: dict[str, str] = {}
    for key, text in field_errors(cause, lang).items():
        target = key if key in names else ""
        found[target] = f"{found[target]} {text}" if target in found else text
    return found


# --- pages ----------------------------------------------------------------------------------

def _context(request: Request, person: Person, equipment: EquipmentInfo, kind: RecordKind,
             *, db: Session | None = None) -> dict[str, Any]:
    lang = lang_of(request)
    fields = fields_of(kind, equipment, lang, request=request, db=db)

    def when_labels(field: Field) -> str:
        assert field.when is not None
        name, wanted = field.when
        labels = dict(next((f.choices for f in fields if f.name == name), []))
        return ", ".join(labels.get(value, value) for value in sorted(wanted))

    return {"nav": "records", "equipment": equipment, "kind": kind, "when_labels": when_labels,
            "base": f"/registres/{equipment.site}/{equipment.id}/{kind.slug}",
            "kind_title": kind.label(lang, equipment.kind),
            "fields": fields,
            "writable": may_write(person, kind), "zone": ZoneInfo(equipment.timezone),
            "shown": lambda value, field=None: shown(
                dict(field.choices).get(str(value), value) if field and field.choices else value,
                lang, equipment.timezone)}


@router.get("/registres", response_class=HTMLResponse)
def index(request: Request, person: CurrentPerson, registry: Registry) -> HTMLResponse:
    """The equipment of the person's sites, each with the record kinds it takes."""
    lang = lang_of(request)
    entries = [(eq, [(k, k.label(lang, eq.kind)) for k in kinds_for(eq.kind)])
               for (site, _), eq in sorted(registry.equipment.items()) if person.may_see(site)]
    return page(request, "records_index.html", nav="records", entries=entries)


PAGE_SIZE = 50


def _cells(rows: list[Any], fields: list[Field], lang: Lang, zone: str) -> list[dict[str, Any]]:
    """Each record as the list shows it, formatted here once: a template reading attributes
    through Jinja's sandboxed `attr` costs a millisecond a record."""
    out = []
    for row in rows:
        cells = []
        for field in fields:
            value = getattr(row, field.name, None)
            text = shown(dict(field.choices).get(str(value), value) if field.choices else value,
                         lang, zone)
            if field.unit and value is not None:
                text = f"{text} {field.unit}"
            cells.append((field, text))
        out.append({"row": row, "title": cells[0][1] if cells else "", "cells": cells,
                    "voided_by": who(row.voided_by) if row.voided_at else ""})
    return out


def _list_url(base: str, *, page_no: int, show_voided: bool) -> str:
    query = {"annulees": "1"} if show_voided else {}
    if page_no > 1:
        query["page"] = str(page_no)
    return f"{base}?{urlencode(query)}" if query else base


@router.get(_BASE, response_class=HTMLResponse)
def list_page(request: Request, person: CurrentPerson, registry: Registry, db: Db,
              site: _Site, equipment: _Site, kind: _Kind,
              annulees: Annotated[bool, Query()] = False,
              fait: Annotated[str | None, Query(pattern="^(created|edited|voided)$")] = None,
              page_no: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
              ) -> HTMLResponse:
    """The kind's records of the equipment, newest first, `PAGE_SIZE` a page (the database
    pages, so a year of records costs what one page does); voided ones on the switch."""
    eq = _equipment(person, registry, site, equipment)
    k = _kind(eq, kind)
    lang = lang_of(request)
    total = service.count(db, k, equipment=eq, include_voided=annulees)
    pages = max(1, -(-total // PAGE_SIZE))
    page_no = min(page_no, pages)
    rows = service.rows(db, k, equipment=eq, include_voided=annulees, newest_first=True,
                        limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
    ctx = _context(request, person, eq, k)
    base = ctx["base"]
    links = {name: _list_url(base, page_no=number_, show_voided=annulees)
             for name, number_ in (("first", 1), ("previous", page_no - 1),
                                   ("next", page_no + 1), ("last", pages))
             if 1 <= number_ <= pages and number_ != page_no}
    return page(request, "records_list.html", records=_cells(rows, ctx["fields"], lang,
                                                             eq.timezone),
                show_voided=annulees, done=fait, total=total, page_no=page_no, pages=pages,
                first_no=(page_no - 1) * PAGE_SIZE + 1 if rows else 0,
                last_no=(page_no - 1) * PAGE_SIZE + len(rows), links=links,
                voided_switch=_list_url(base, page_no=1, show_voided=not annulees), **ctx)


def _render_form(request: Request, person: Person, db: Session, eq: EquipmentInfo,
                 k: RecordKind, *, mode: str, values: dict[str, str], errors: dict[str, str],
                 idempotency_key: str = "", version: int | None = None, record: Any = None,
                 notice: str = "", status: int = 200) -> HTMLResponse:
    return page(request, "records_form.html", mode=mode, values=values, errors=errors,
                idempotency_key=idempotency_key, version=version, record=record,
                notice=notice, status=status, **_context(request, person, eq, k, db=db))


def _catalog(request: Request) -> service.Catalog:
    """The api's own factor and GWP tables (with the site's files), as the api checks with."""
    return service.Catalog(factors=request.app.state.factors, gwp=request.app.state.gwp)


def _writer(request: Request, person: Person, kind: RecordKind) -> None:
    if not may_write(person, kind):
        raise ConsoleRefusal(request, 403, "common.forbidden")


def _done(db: Session, eq: EquipmentInfo, k: RecordKind, what: str, record_id: int
          ) -> RedirectResponse:
    """Back to the list, on the page the record is on (an edit of an old batch is not on
    the first)."""
    query = {"fait": what}
    row = db.get(k.table, record_id)
    if row is not None and row.voided_at is None:
        before = service.count(db, k, equipment=eq, newer_than=row)
        if before >= PAGE_SIZE:
            query["page"] = str(before // PAGE_SIZE + 1)
    return RedirectResponse(
        f"/registres/{eq.site}/{eq.id}/{k.slug}?{urlencode(query)}#r{record_id}",
        status_code=303)


@router.get(f"{_BASE}/nouveau", response_class=HTMLResponse)
def create_form(request: Request, person: CurrentPerson, registry: Registry, db: Db,
                site: _Site, equipment: _Site, kind: _Kind) -> HTMLResponse:
    """An empty form, prefilled from the query (the "what is missing" links use it), with the
    idempotency key of this one entry."""
    eq = _equipment(person, registry, site, equipment)
    k = _kind(eq, kind)
    _writer(request, person, k)
    names = {spec.name for spec in k.fields_for(eq.kind)}
    values = {key: value for key, value in request.query_params.items() if key in names}
    return _render_form(request, person, db, eq, k, mode="create", values=values, errors={},
                        idempotency_key=uuid.uuid4().hex)


@router.post(f"{_BASE}/nouveau", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def create(request: Request, person: CurrentPerson, registry: Registry, db: Db,
                 site: _Site, equipment: _Site, kind: _Kind) -> Response:
    eq = _equipment(person, registry, site, equipment)
    k = _kind(eq, kind)
    _writer(request, person, k)
    lang = lang_of(request)
    fields = fields_of(k, eq, lang)
    form = _form_data(await request.form())
    key = form.get("idempotency_key", "")[:100] or uuid.uuid4().hex
    values, unreadable = to_values(form, fields, eq.timezone)
    errors = {name: translate(message, lang) for name, message in unreadable.items()}
    if not errors:
        try:
            row = service.create(db, k, values, equipment=eq, actor=person.actor,
                                 via="console", idempotency_key=key,
                                 catalog=_catalog(request))
        except service.RecordInvalid as exc:
            db.rollback()
            errors = _error_map(exc, lang, fields)
        except service.RecordDuplicate:
            errors = {"": translate("records.duplicate", lang)}
        else:
            return _done(db, eq, k, "created", row.id)
    kept = {f.name: form.get(f.name, "") for f in fields}
    return _render_form(request, person, db, eq, k, mode="create", values=kept, errors=errors,
                        idempotency_key=key, status=422)


@router.get(f"{_BASE}/{{record_id}}/modifier", response_class=HTMLResponse)
def edit_form(request: Request, person: CurrentPerson, registry: Registry, db: Db,
              site: _Site, equipment: _Site, kind: _Kind, record_id: int) -> HTMLResponse:
    """The record's values, and the version they are (an edit from an older one is refused)."""
    eq = _equipment(person, registry, site, equipment)
    k = _kind(eq, kind)
    _writer(request, person, k)
    row = _row(db, k, eq, record_id)
    if row.voided_at is not None:
        raise HTTPException(404)
    values = {spec.name: form_value(getattr(row, spec.name, None), eq.timezone)
              for spec in k.fields_for(eq.kind)}
    return _render_form(request, person, db, eq, k, mode="edit", values=values, errors={},
                        version=row.version, record=row)


@router.post(f"{_BASE}/{{record_id}}/modifier", response_class=HTMLResponse,
             dependencies=[CsrfChecked])
async def edit(request: Request, person: CurrentPerson, registry: Registry, db: Db,
               site: _Site, equipment: _Site, kind: _Kind, record_id: int) -> Response:
    eq = _equipment(person, registry, site, equipment)
    k = _kind(eq, kind)
    _writer(request, person, k)
    row = _row(db, k, eq, record_id)
    lang = lang_of(request)
    fields = fields_of(k, eq, lang)
    form = _form_data(await request.form())
    try:
        expected = int(form.get("version", ""))
    except ValueError:
        raise HTTPException(400) from None
    values, unreadable = to_values(form, fields, eq.timezone)
    errors = {name: translate(message, lang) for name, message in unreadable.items()}
    notice = ""
    status = 422
    if not errors:
        try:
            service.edit(db, k, record_id, values, equipment=eq, expected_version=expected,
                         actor=person.actor, via="console",
                         reason=form.get("reason", "").strip()[:2000],
                         catalog=_catalog(request))
        except service.VersionConflict as exc:
            db.rollback()
            db.expire_all()
            row = _row(db, k, eq, record_id)
            by = who(exc.by)
            notice = translate("records.conflict_batch" if k.name == "batches"
                               else "records.conflict", lang, who=by)
            status = 409
        except service.RecordInvalid as exc:
            db.rollback()
            errors = _error_map(exc, lang, fields)
        except service.RecordDuplicate:
            errors = {"": translate("records.duplicate", lang)}
        else:
            return _done(db, eq, k, "edited", record_id)
    kept = {f.name: form.get(f.name, "") for f in fields}
    return _render_form(request, person, db, eq, k, mode="edit", values=kept, errors=errors,
                        version=expected, record=row, notice=notice, status=status)


@router.get(f"{_BASE}/{{record_id}}/annuler", response_class=HTMLResponse)
def void_form(request: Request, person: CurrentPerson, registry: Registry, db: Db,
              site: _Site, equipment: _Site, kind: _Kind, record_id: int) -> HTMLResponse:
    eq = _equipment(person, registry, site, equipment)
    k = _kind(eq, kind)
    _writer(request, person, k)
    row = _row(db, k, eq, record_id)
    return page(request, "records_void.html", record=row, error="", reason="",
                **_context(request, person, eq, k))


@router.post(f"{_BASE}/{{record_id}}/annuler", response_class=HTMLResponse,
             dependencies=[CsrfChecked])
async def void(request: Request, person: CurrentPerson, registry: Registry, db: Db,
               site: _Site, equipment: _Site, kind: _Kind, record_id: int) -> Response:
    """Void with a reason: the record stays, struck through, out of every figure."""
    eq = _equipment(person, registry, site, equipment)
    k = _kind(eq, kind)
    _writer(request, person, k)
    row = _row(db, k, eq, record_id)
    form = _form_data(await request.form())
    reason = form.get("reason", "").strip()[:2000]
    if not reason:
        return page(request, "records_void.html", record=row, reason="", status=422,
                    error=translate("records.reason_required", lang_of(request)),
                    **_context(request, person, eq, k))
    if row.voided_at is None:  # a second click voids nothing more
        service.void(db, k, record_id, equipment=eq, actor=person.actor, via="console",
                     reason=reason)
    return _done(db, eq, k, "voided", record_id)


@router.get(f"{_BASE}/{{record_id}}/historique", response_class=HTMLResponse)
def history(request: Request, person: CurrentPerson, registry: Registry, db: Db,
            site: _Site, equipment: _Site, kind: _Kind, record_id: int) -> HTMLResponse:
    """Every create, edit and void of the record: who, when, through what, what changed."""
    eq = _equipment(person, registry, site, equipment)
    k = _kind(eq, kind)
    row = _row(db, k, eq, record_id)
    ctx = _context(request, person, eq, k)
    labels = {f.name: f.label for f in ctx["fields"]}
    entries = history_entries(db, k, record_id, owner=eq, labels=labels)
    return page(request, "records_history.html", record=row, entries=entries, **ctx)


def history_entries(db: Session, kind: RecordKind, record_id: int, *, owner: service.Owner,
                    labels: dict[str, str]) -> list[dict[str, Any]]:
    """A record's audit entries as the history page shows them, newest first: who, when,
    through what, why, and each labelled field that changed (before → after)."""
    entries = []
    for entry in service.history(db, kind, record_id, equipment=owner):
        before = entry.before or {}
        after = entry.after or {}
        changed = [n for n in labels if (n in before or n in after)
                   and before.get(n) != after.get(n)]
        entries.append({"action": str(entry.action), "who": who(entry.actor),
                        "via": str(entry.via), "at": entry.at, "reason": entry.reason or "",
                        "changes": [(labels[n], before.get(n), after.get(n)) for n in changed]})
    entries.reverse()
    return entries
