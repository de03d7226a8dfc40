"""Electricity supply contracts of a site in the console (market-based scope 2): list, create,
edit, void and history, at `/registres/{site}/contrats-electricite`.

Nothing is checked twice: every write goes through the records service (`api.records.service`,
kind `electricity_contracts`, owned by the site), as the api's do: the rules of
`ElectricityContractIn` with their messages next to the field (`field_errors`), the version
(an edit that races another is refused), the form's idempotency key (a double click stores
one contract) and the audit trail, shown by the history page. Dates are whole days in the
site's time zone: the form asks for the last day included, stored as the next local midnight
(`valid_to` is exclusive).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.access.people import Person
from api.access.tokens import Principal, TokenRole
from api.console.auth import ConsoleRefusal, CsrfChecked, CurrentPerson
from api.console.i18n import Lang, translate, typed_number
from api.console.records import history_entries, shown, who
from api.console.render import lang_of, page
from api.deps import IDENT, Db, Registry
from api.records import service
from api.records.contracts import ElectricityContract
from api.records.kinds import ELECTRICITY_CONTRACTS as KIND
from api.records.service import RecordInvalid, RecordNotFound, VersionConflict
from api.records.validation import FORM, field_errors
from api.routes import contracts as contract_routes
from api.sites import SiteRegistry

router = APIRouter()

_BASE = "/registres/{site}/contrats-electricite"
_Site = Annotated[str, Path(pattern=IDENT)]
FIELDS = ("supplier", "product", "factor_kg_per_kwh", "factor_source", "guarantees_of_origin",
          "certificate_ref", "valid_from", "valid_to", "notes")


def may_write(person: Person) -> bool:
    """Evaluators and admins record contracts; operators read them."""
    return person.role in (TokenRole.ADMIN, TokenRole.EVALUATOR)


def caller_of(person: Person) -> Principal:
    """The person as the api's routes see a caller (role, site scope, the name they record)."""
    return Principal(token_id=0, name=person.actor, role=person.role, site=person.site)


def _zone(registry: SiteRegistry, site: str) -> str:
    return registry.timezone(site) or "UTC"


def _checked_site(request: Request, registry: SiteRegistry, person: Person, site: str) -> str:
    try:
        return contract_routes._site(registry, caller_of(person), site)
    except HTTPException:
        # Another site's contracts look exactly like a site that does not exist.
        raise ConsoleRefusal(request, 404, "common.not_found") from None


def _row(request: Request, db: Session, site: str, contract_id: int) -> ElectricityContract:
    try:
        row = service.get(db, KIND, contract_id, equipment=site)
    except RecordNotFound:
        raise ConsoleRefusal(request, 404, "common.not_found") from None
    assert isinstance(row, ElectricityContract)
    return row


def _writer(request: Request, person: Person) -> None:
    if not may_write(person):
        raise ConsoleRefusal(request, 403, "common.forbidden")


# --- between the form, the model and the page --------------------------------------------

def _midnight(text: str, zone: str, *, next_day: bool = False) -> datetime | str:
    """A form's date as the local midnight starting it (or the next one); the text itself
    when it is not a date, for the model to refuse."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return text
    if next_day:
        day += timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone))


def to_body(form: dict[str, str], *, zone: str) -> dict[str, Any]:
    """The form's fields as the api's contract body (empty optional fields left out)."""
    body: dict[str, Any] = {}
    for name in FIELDS:
        raw = form.get(name, "").strip()
        if name == "guarantees_of_origin":
            body[name] = raw in ("1", "on", "true")
        elif name == "factor_kg_per_kwh":
            body[name] = typed_number(raw)
        elif name in ("valid_from", "valid_to"):
            if raw:
                body[name] = _midnight(raw, zone, next_day=name == "valid_to")
        elif raw or name in ("supplier", "product", "factor_source"):
            body[name] = raw
    return body


def errors_of(exc: ValidationError, lang: Lang) -> dict[str, str]:
    """The model's refusal as one message per field ('' for the whole form)."""
    return {("" if key == FORM or key not in FIELDS else key): text
            for key, text in field_errors(exc, lang).items()}


def form_values(row: ElectricityContract, zone: str) -> dict[str, str]:
    """A stored contract as the form shows it (the last day included, not the exclusive end)."""
    local = ZoneInfo(zone)
    return {
        "supplier": row.supplier, "product": row.product,
        "factor_kg_per_kwh": f"{row.factor_kg_per_kwh:.10g}",
        "factor_source": row.factor_source,
        "guarantees_of_origin": "1" if row.guarantees_of_origin else "",
        "certificate_ref": row.certificate_ref or "",
        "valid_from": row.valid_from.astimezone(local).date().isoformat(),
        "valid_to": ((row.valid_to.astimezone(local) - timedelta(days=1)).date().isoformat()
                     if row.valid_to is not None else ""),
        "notes": row.notes or ""}


def _day(value: datetime | None, lang: Lang, zone: str, *, last: bool = False) -> str:
    if value is None:
        return ""
    local = value.astimezone(ZoneInfo(zone))
    if last:
        local -= timedelta(days=1)
    return local.strftime("%d/%m/%Y" if lang == "fr" else "%Y-%m-%d")


def _factor(value: float, lang: Lang) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") if lang == "fr" else text



def _items(rows: list[ElectricityContract], lang: Lang, zone: str) -> list[dict[str, Any]]:
    """Each contract as the list shows it, formatted once here."""
    return [{"row": row, "from": _day(row.valid_from, lang, zone),
             "to": _day(row.valid_to, lang, zone, last=True),
             "factor": _factor(row.factor_kg_per_kwh, lang),
             "voided_by": who(row.voided_by),
             "voided_at": _day(row.voided_at, lang, zone)} for row in rows]


def _form_data(raw: Any) -> dict[str, str]:
    return {key: value for key, value in raw.items() if isinstance(value, str)}


def _render_form(request: Request, *, site: str, mode: str, values: dict[str, str],
                 errors: dict[str, str], idempotency_key: str = "",
                 version: int | None = None, row: ElectricityContract | None = None,
                 notice: str = "", status: int = 200) -> HTMLResponse:
    return page(request, "contracts_form.html", nav="records", site=site, mode=mode,
                base=f"/registres/{site}/contrats-electricite", values=values, errors=errors,
                idempotency_key=idempotency_key, version=version, row=row, notice=notice,
                status=status)


def _done(site: str, what: str, contract_id: int) -> RedirectResponse:
    return RedirectResponse(
        f"/registres/{site}/contrats-electricite?{urlencode({'fait': what})}#c{contract_id}",
        status_code=303)


# --- pages ----------------------------------------------------------------------------------

@router.get(_BASE, response_class=HTMLResponse)
def list_page(request: Request, person: CurrentPerson, registry: Registry, db: Db,
              site: _Site, annulees: Annotated[bool, Query()] = False,
              fait: Annotated[str | None, Query(pattern="^(created|edited|voided)$")] = None,
              ) -> HTMLResponse:
    """The site's contracts by start date, as the api lists them."""
    checked = _checked_site(request, registry, person, site)
    rows = [r for r in service.rows(db, KIND, equipment=checked, include_voided=annulees)
            if isinstance(r, ElectricityContract)]
    base = f"/registres/{checked}/contrats-electricite"
    return page(request, "contracts.html", nav="records", site=checked, base=base,
                contracts=_items(rows, lang_of(request), _zone(registry, checked)),
                show_voided=annulees, done=fait, writable=may_write(person),
                voided_switch=base if annulees else f"{base}?annulees=1")


@router.get(f"{_BASE}/nouveau", response_class=HTMLResponse)
def create_form(request: Request, person: CurrentPerson, registry: Registry,
                site: _Site) -> HTMLResponse:
    checked = _checked_site(request, registry, person, site)
    _writer(request, person)
    return _render_form(request, site=checked, mode="create", values={}, errors={},
                        idempotency_key=uuid.uuid4().hex)


@router.post(f"{_BASE}/nouveau", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def create(request: Request, person: CurrentPerson, registry: Registry, db: Db,
                 site: _Site) -> Response:
    checked = _checked_site(request, registry, person, site)
    _writer(request, person)
    lang = lang_of(request)
    form = _form_data(await request.form())
    key = form.get("idempotency_key", "")[:100] or uuid.uuid4().hex
    try:
        # The form's key: a second click returns the contract the first one stored.
        row = service.create(db, KIND, to_body(form, zone=_zone(registry, checked)),
                             equipment=checked, actor=person.actor, via="console",
                             idempotency_key=key)
    except RecordInvalid as exc:
        return _render_form(request, site=checked, mode="create", values=form,
                            errors=errors_of(exc.error, lang), idempotency_key=key,
                            status=422)
    return _done(checked, "created", row.id)


@router.get(f"{_BASE}/{{contract_id}}/modifier", response_class=HTMLResponse)
def edit_form(request: Request, person: CurrentPerson, registry: Registry, db: Db,
              site: _Site, contract_id: int) -> HTMLResponse:
    checked = _checked_site(request, registry, person, site)
    _writer(request, person)
    row = _row(request, db, checked, contract_id)
    if row.voided_at is not None:
        raise ConsoleRefusal(request, 404, "common.not_found")
    return _render_form(request, site=checked, mode="edit",
                        values=form_values(row, _zone(registry, checked)), errors={},
                        version=row.version, row=row)


@router.post(f"{_BASE}/{{contract_id}}/modifier", response_class=HTMLResponse,
             dependencies=[CsrfChecked])
async def edit(request: Request, person: CurrentPerson, registry: Registry, db: Db,
               site: _Site, contract_id: int) -> Response:
    checked = _checked_site(request, registry, person, site)
    _writer(request, person)
    row = _row(request, db, checked, contract_id)
    lang = lang_of(request)
    form = _form_data(await request.form())
    try:
        expected = int(form.get("version", ""))
    except ValueError:
        raise HTTPException(400) from None
    try:
        service.edit(db, KIND, contract_id, to_body(form, zone=_zone(registry, checked)),
                     equipment=checked, expected_version=expected, actor=person.actor,
                     via="console")
    except RecordInvalid as exc:
        return _render_form(request, site=checked, mode="edit", values=form,
                            errors=errors_of(exc.error, lang), version=expected, row=row,
                            status=422)
    except VersionConflict:
        db.expire_all()
        row = _row(request, db, checked, contract_id)
        key = "contracts.conflict_voided" if row.voided_at else "contracts.conflict"
        notice = translate(key, lang, who=who(row.updated_by or row.voided_by))
        return _render_form(request, site=checked, mode="edit", values=form, errors={},
                            version=expected, row=row, notice=notice, status=409)
    return _done(checked, "edited", contract_id)


@router.get(f"{_BASE}/{{contract_id}}/annuler", response_class=HTMLResponse)
def void_form(request: Request, person: CurrentPerson, registry: Registry, db: Db,
              site: _Site, contract_id: int) -> HTMLResponse:
    checked = _checked_site(request, registry, person, site)
    _writer(request, person)
    row = _row(request, db, checked, contract_id)
    return page(request, "contracts_void.html", nav="records", site=checked,
                base=f"/registres/{checked}/contrats-electricite", row=row, error="",
                reason="", item=_items([row], lang_of(request), _zone(registry, checked))[0])


@router.post(f"{_BASE}/{{contract_id}}/annuler", response_class=HTMLResponse,
             dependencies=[CsrfChecked])
async def void(request: Request, person: CurrentPerson, registry: Registry, db: Db,
               site: _Site, contract_id: int) -> Response:
    """Void with a reason: the contract stays listed, struck through, out of the figures."""
    checked = _checked_site(request, registry, person, site)
    _writer(request, person)
    row = _row(request, db, checked, contract_id)
    form = _form_data(await request.form())
    reason = form.get("reason", "").strip()[:500]
    if not reason:
        return page(request, "contracts_void.html", nav="records", site=checked,
                    base=f"/registres/{checked}/contrats-electricite", row=row, reason="",
                    error=translate("contracts.reason_required", lang_of(request)),
                    item=_items([row], lang_of(request), _zone(registry, checked))[0],
                    status=422)
    if row.voided_at is None:  # a second click voids nothing more
        service.void(db, KIND, contract_id, equipment=checked, actor=person.actor,
                     via="console", reason=reason)
    return _done(checked, "voided", contract_id)


@router.get(f"{_BASE}/{{contract_id}}/historique", response_class=HTMLResponse)
def history(request: Request, person: CurrentPerson, registry: Registry, db: Db,
            site: _Site, contract_id: int) -> HTMLResponse:
    """Every create, edit and void of the contract: who, when, through what, what changed."""
    checked = _checked_site(request, registry, person, site)
    row = _row(request, db, checked, contract_id)
    lang = lang_of(request)
    zone = _zone(registry, checked)
    labels = {f.name: f.label(lang) for f in KIND.fields}
    yes_no = {True: translate("contracts.yes", lang), False: translate("contracts.no", lang)}
    entries = history_entries(db, KIND, contract_id, owner=checked, labels=labels)
    return page(request, "records_history.html", nav="records", record=row, entries=entries,
                equipment={"name": checked}, kind_title=KIND.label(lang),
                base=f"/registres/{checked}/contrats-electricite", zone=ZoneInfo(zone),
                shown=lambda value, field=None: yes_no[value] if isinstance(value, bool)
                else shown(value, lang, zone))
