"""The base year of one equipment in the console (ISO 14064-1:2018 §6.4), at
`/indicateurs/{site}/{equipment}/annee-de-reference`: the figures frozen when an admin set it,
the same year recalculated today beside them, and for each figure that moved the reasons the
api can prove. An admin sets the base year (a whole past year) and records a recalculation.

Nothing is computed here: the page shows the answer of the api's own route functions
(`api.routes.base_years`), written in French with units and French numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.access.people import Person
from api.access.tokens import TokenRole
from api.accounting.base_year import BaseYearIn, BaseYearOut, Reason
from api.console.auth import ConsoleRefusal, CsrfChecked, CurrentPerson
from api.console.contracts import caller_of
from api.console.i18n import Lang, catalogue, translate
from api.console.indicators import checked_equipment
from api.console.records import who
from api.console.render import lang_of, moment, page
from api.deps import IDENT, Db, Factors, Gwp, Registry, Settings, Store
from api.records.validation import field_errors
from api.routes import base_years as base_year_routes
from api.sites import EquipmentInfo

router = APIRouter()

_PATH = "/indicateurs/{site}/{equipment}/annee-de-reference"
_Ident = Annotated[str, Path(pattern=IDENT)]

# Record tables as an operator names them (the subject of a record reason is `table id`).
_TABLES = {"batches": "table_batches", "refrigerant_top_ups": "table_refrigerant_top_ups",
           "material_lots": "table_material_lots", "manual_activities": "table_manual_activities",
           "electricity_contracts": "table_electricity_contracts"}


@dataclass(frozen=True, slots=True)
class Row:
    """One figure of the base year as the table shows it."""

    key: str
    label: str
    unit: str
    digits: int
    frozen: float | None
    recalculated: float | None
    change_pct: float | None
    moved: bool
    reasons: list[str]


def _word(key: str, lang: Lang, **values: Any) -> str:
    return translate(f"base_year.{key}", lang, **values)


def figure_label(key: str, lang: Lang) -> tuple[str, str, int]:
    """A figure path of the snapshot → its label, unit and decimals."""
    words = catalogue()
    if key.startswith("energy."):
        source = key.removeprefix("energy.").removesuffix("_kwh")
        found = words.get(f"indicators.source_{source}")
        return _word("figure_energy", lang, source=found[lang] if found else source), "kWh", 1
    name = key.removeprefix("ghg.")
    unit = "kg CO₂" if name.endswith("co2_kg") and "co2e" not in name else "kg CO₂e"
    if "[" in name:
        listed, ident = name.split("[", 1)
        item = ident.split("]", 1)[0]
        named = words.get(f"base_year.figure_{item}_co2e_kg")
        if named is None and item.startswith("scope3_cat"):
            named = {lang: _word("scope3_category", lang, n=item.removeprefix("scope3_cat"))}
        elif named is None and item.startswith("iso") and item[3:].isdigit():
            named = {lang: _word("iso_category", lang, n=item[3:])}
        return _word(f"figure_{listed}", lang, item=named[lang] if named else item), unit, 2
    found = words.get(f"base_year.figure_{name}")
    return (found[lang] if found else name), unit, 2


# The order of the table: energy, the totals, then their details.
_TOTALS_ORDER = ("scope1_co2e_kg", "scope2_co2e_kg", "scope2_location_co2e_kg",
                 "scope2_market_co2e_kg", "scope3_co2e_kg", "biogenic_co2_kg")


def _rank(key: str) -> tuple[int, int, str]:
    name = key.removeprefix("ghg.")
    if key.startswith("energy."):
        return (0, 0, key)
    if name in _TOTALS_ORDER:
        return (1, _TOTALS_ORDER.index(name), key)
    return (2 if name.startswith("by_scope") else 3, 0, key)


def reason_text(reason: Reason, lang: Lang) -> str:
    """A reason of the api in the operator's words."""
    if reason.kind == "factor":
        if reason.frozen and reason.current:
            return _word("reason_factor", lang, factor=reason.subject, frozen=reason.frozen,
                         current=reason.current)
        if reason.frozen:
            return _word("reason_factor_gone", lang, factor=reason.subject, frozen=reason.frozen)
        return _word("reason_factor_new", lang, factor=reason.subject, current=reason.current)
    if reason.kind == "record":
        table, _, ident = reason.subject.partition(" ")
        what = _word(_TABLES[table], lang, id=ident) if table in _TABLES else reason.subject
        if reason.frozen is None:
            return _word("reason_record_added", lang, record=what)
        if reason.current is None:
            return _word("reason_record_deleted", lang, record=what)
        if "voided" in reason.current and "voided" not in reason.frozen:
            return _word("reason_record_voided", lang, record=what)
        return _word("reason_record_edited", lang, record=what,
                     frozen=reason.frozen.removeprefix("version "),
                     current=reason.current.removeprefix("version "))
    return _word("reason_readings", lang, source=reason.subject,
                 frozen=_kwh(reason.frozen, lang), current=_kwh(reason.current, lang))


def _kwh(text: str | None, lang: Lang) -> str:
    if text is None or text == "none":
        return _word("none", lang)
    if lang == "fr":
        return text.replace(".", ",").replace(" kWh", "\u202fkWh")
    return text


def rows_of(out: BaseYearOut, lang: Lang) -> list[Row]:
    """Every figure frozen or recalculated, the moved ones with their reasons."""
    texts = {r.text: reason_text(r, lang) for r in out.reasons}
    changes = {c.figure: c for c in out.changes}
    now = out.recalculated.figures if out.recalculated is not None else {}
    rows = []
    for key in sorted(out.frozen.figures.keys() | now.keys(), key=_rank):
        label, unit, digits = figure_label(key, lang)
        change = changes.get(key)
        rows.append(Row(
            key=key, label=label, unit=unit, digits=digits, frozen=out.frozen.figures.get(key),
            recalculated=now.get(key), change_pct=change.change_pct if change else None,
            moved=change is not None,
            reasons=[texts.get(t, _word("reason_none", lang) if t.startswith("no provable")
                               else t) for t in change.reasons] if change else []))
    return rows


def _recorded(out: BaseYearOut, lang: Lang, zone: ZoneInfo) -> list[dict[str, str]]:
    """The recalculations an admin recorded (and former base years), newest first."""
    found = []
    for entry in reversed(out.recalculations):
        try:
            at = datetime.fromisoformat(str(entry.get("at", ""))).astimezone(zone)
        except ValueError:
            continue
        kind = ("changed" if entry.get("kind") == "base year changed" else "recalculation")
        found.append({"kind": kind, "by": who(str(entry.get("by", ""))),
                      "at": moment(at, lang),
                      "former_year": str(entry.get("former_year", "")),
                      "reasons": str(len(entry.get("reasons") or []))})
    return found


def _admin(request: Request, person: Person) -> None:
    if person.role is not TokenRole.ADMIN:
        raise ConsoleRefusal(request, 403, "common.forbidden")


def _current(request: Request, eq: EquipmentInfo, db: Db, store: Store, factors: Factors,
             gwp: Gwp, settings: Settings) -> BaseYearOut | None:
    try:
        return base_year_routes.get_base_year(request=request, equipment=eq, db=db,
                                              store=store, factors=factors, gwp=gwp,
                                              settings=settings)
    except HTTPException as exc:
        if exc.status_code == 404:
            return None
        raise


def _render(request: Request, person: Person, eq: EquipmentInfo, out: BaseYearOut | None, *,
            year_value: str = "", error: str = "", done: str | None = None,
            status: int = 200) -> HTMLResponse:
    lang = lang_of(request)
    zone = ZoneInfo(eq.timezone)
    last_year = datetime.now(UTC).astimezone(zone).year - 1
    return page(request, "base_year.html", status=status, nav="indicators", eq=eq, out=out,
                rows=rows_of(out, lang) if out is not None else [],
                recorded=_recorded(out, lang, zone) if out is not None else [],
                admin=person.role is TokenRole.ADMIN, last_year=last_year,
                year_value=year_value or str(last_year), error=error, done=done, zone=zone,
                base=f"/indicateurs/{eq.site}/{eq.id}/annee-de-reference")


@router.get(_PATH, response_class=HTMLResponse)
def base_year_page(request: Request, person: CurrentPerson, registry: Registry, db: Db,
                   store: Store, factors: Factors, gwp: Gwp, settings: Settings,
                   site: _Ident, equipment: _Ident,
                   fait: Annotated[str | None, Query(pattern="^(set|recalculated)$")] = None,
                   ) -> HTMLResponse:
    """The frozen figures beside today's recalculation (any role of the site)."""
    eq = checked_equipment(request, registry, person, site, equipment)
    return _render(request, person, eq, _current(request, eq, db, store, factors, gwp,
                                                  settings), done=fait)


def _done(eq: EquipmentInfo, what: str) -> RedirectResponse:
    return RedirectResponse(
        f"/indicateurs/{eq.site}/{eq.id}/annee-de-reference?{urlencode({'fait': what})}",
        status_code=303)


@router.post(_PATH, response_class=HTMLResponse, dependencies=[CsrfChecked])
async def set_year(request: Request, person: CurrentPerson, registry: Registry, db: Db,
                   store: Store, factors: Factors, gwp: Gwp, settings: Settings,
                   site: _Ident, equipment: _Ident) -> Response:
    """Set the base year (admin): its figures are frozen as computed now."""
    eq = checked_equipment(request, registry, person, site, equipment)
    _admin(request, person)
    lang = lang_of(request)
    raw = str((await request.form()).get("year", "")).strip()
    error, status = "", 422
    try:
        body = BaseYearIn.model_validate({"year": raw})
    except ValidationError as exc:
        error = next(iter(field_errors(exc, lang).values()))
    else:
        try:
            base_year_routes.set_base_year(
                request=request, equipment=eq, db=db, store=store, factors=factors, gwp=gwp,
                settings=settings, caller=caller_of(person), body=body)
        except HTTPException as exc:
            db.rollback()
            if exc.status_code == 409:
                error, status = _word("already_set", lang, year=body.year), 409
            elif "is not over" in str(exc.detail):
                error = _word("not_over", lang, year=body.year)
            elif exc.status_code == 422:
                error = _word("cannot_compute", lang, detail=str(exc.detail))
            else:
                raise
        else:
            return _done(eq, "set")
    out = _current(request, eq, db, store, factors, gwp, settings)
    return _render(request, person, eq, out, year_value=raw, error=error, status=status)


@router.post(f"{_PATH}/recalcul", response_class=HTMLResponse, dependencies=[CsrfChecked])
def recalculate(request: Request, person: CurrentPerson, registry: Registry, db: Db,
                store: Store, factors: Factors, gwp: Gwp, settings: Settings,
                site: _Ident, equipment: _Ident) -> Response:
    """Record today's recalculation after the frozen original (admin)."""
    eq = checked_equipment(request, registry, person, site, equipment)
    _admin(request, person)
    try:
        base_year_routes.record_recalculation(
            request=request, equipment=eq, db=db, store=store, factors=factors, gwp=gwp,
            settings=settings, caller=caller_of(person))
    except HTTPException as exc:
        db.rollback()
        if exc.status_code == 404:
            raise ConsoleRefusal(request, 404, "common.not_found") from None
        out = _current(request, eq, db, store, factors, gwp, settings)
        return _render(request, person, eq, out, status=422, error=_word(
            "cannot_compute", lang_of(request), detail=str(exc.detail)))
    return _done(eq, "recalculated")
