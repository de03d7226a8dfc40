"""The shift calendar of one line in the console, at `/indicateurs/{site}/{equipment}/calendrier`
(admins only): the weekly shifts and the dated exceptions (holidays and closures, planned stops,
extra shifts) that give the planned production time of OEE availability.

The form shows the calendar in force (the admin's latest version, else the site
configuration's) with a few empty rows to add to; a row left empty is ignored. Saving stores a
new version through `api.records.calendars` (the api's own path: version check, audit trail);
a calendar that breaks a rule is shown again with each error's place and reason in French
(`telemetry.shifts`). "Back to the configuration" stores a version without a calendar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.access.people import Person
from api.access.tokens import TokenRole
from api.console.auth import ConsoleRefusal, CsrfChecked, CurrentPerson
from api.console.indicators import checked_equipment
from api.console.records import who
from api.console.render import lang_of, moment, page
from api.deps import IDENT, Db, Registry
from api.records import calendars
from api.records.calendars import CalendarConflict, calendar_errors
from api.sites import EquipmentInfo
from telemetry.shifts import WEEKDAYS, ExceptionKind, ShiftCalendar

router = APIRouter()

_PATH = "/indicateurs/{site}/{equipment}/calendrier"
_Ident = Annotated[str, Path(pattern=IDENT)]
BLANK_SHIFTS = 2
BLANK_EXCEPTIONS = 3
KINDS = tuple(k.value for k in ExceptionKind)


@dataclass(frozen=True, slots=True)
class ShiftRow:
    name: str = ""
    days: tuple[str, ...] = ()
    start: str = ""
    end: str = ""


@dataclass(frozen=True, slots=True)
class ExceptionRow:
    kind: str = ""
    start: str = ""
    end: str = ""
    reason: str = ""


def _admin(request: Request, person: Person) -> None:
    if person.role is not TokenRole.ADMIN:
        raise ConsoleRefusal(request, 403, "common.forbidden")


def _moment_text(value: Any) -> str:
    """A stored exception bound as the form shows it: `2026-05-08` or `2026-05-06T10:00`."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="minutes")
    return str(value.isoformat())


def rows_of(calendar: ShiftCalendar | None) -> tuple[list[ShiftRow], list[ExceptionRow]]:
    """The calendar as form rows, followed by empty rows to add to."""
    shifts = [ShiftRow(s.name, s.days, s.start, s.end) for s in calendar.shifts] if calendar \
        else []
    exceptions = [ExceptionRow(e.kind.value, _moment_text(e.start), _moment_text(e.end),
                               e.reason) for e in calendar.exceptions] if calendar else []
    return ([*shifts, *[ShiftRow()] * BLANK_SHIFTS],
            [*exceptions, *[ExceptionRow()] * BLANK_EXCEPTIONS])


def parse_form(form: dict[str, str], days: dict[str, list[str]]
               ) -> tuple[list[ShiftRow], list[ExceptionRow]]:
    """Every row the form sent, empty ones included (they are shown again as they were)."""
    shifts: list[ShiftRow] = []
    i = 0
    while f"shift-{i}-start" in form:
        shifts.append(ShiftRow(form.get(f"shift-{i}-name", "").strip(),
                               tuple(d for d in WEEKDAYS if d in days.get(f"shift-{i}-days", [])),
                               form.get(f"shift-{i}-start", "").strip(),
                               form.get(f"shift-{i}-end", "").strip()))
        i += 1
    exceptions: list[ExceptionRow] = []
    i = 0
    while f"exception-{i}-start" in form:
        exceptions.append(ExceptionRow(form.get(f"exception-{i}-kind", "").strip(),
                                       form.get(f"exception-{i}-start", "").strip(),
                                       form.get(f"exception-{i}-end", "").strip(),
                                       form.get(f"exception-{i}-reason", "").strip()))
        i += 1
    return shifts, exceptions


def _filled_shift(row: ShiftRow) -> bool:
    return bool(row.name or row.days or row.start or row.end)


def _filled_exception(row: ExceptionRow) -> bool:
    return bool(row.start or row.end or row.reason)


def to_body(shifts: list[ShiftRow], exceptions: list[ExceptionRow]
            ) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The filled rows as the api's calendar, and for each part the form row of each item
    (so that an error names the row the admin sees)."""
    kept_shifts = [i for i, r in enumerate(shifts) if _filled_shift(r)]
    kept_exceptions = [i for i, r in enumerate(exceptions) if _filled_exception(r)]
    body = {
        "shifts": [{"name": shifts[i].name, "days": list(shifts[i].days),
                    "start": shifts[i].start, "end": shifts[i].end} for i in kept_shifts],
        "exceptions": [{"kind": exceptions[i].kind, "start": exceptions[i].start,
                        "end": exceptions[i].end, "reason": exceptions[i].reason}
                       for i in kept_exceptions]}
    return body, {"shifts": kept_shifts, "exceptions": kept_exceptions}


def _form_data(raw: Any) -> tuple[dict[str, str], dict[str, list[str]]]:
    fields = {key: value for key, value in raw.items() if isinstance(value, str)}
    days = {key: [v for v in raw.getlist(key) if isinstance(v, str)]
            for key in raw if key.endswith("-days")}
    return fields, days


def _history(db: Db, eq: EquipmentInfo, zone: ZoneInfo, lang: str) -> list[dict[str, str]]:
    """The stored versions, newest first, as the page lists them."""
    return [{"version": str(row.version), "by": who(row.set_by),
             "at": moment(row.set_at.astimezone(zone), "fr" if lang == "fr" else "en"),
             "reason": row.reason, "reverted": "1" if row.calendar is None else ""}
            for row in reversed(calendars.versions(db, site=eq.site, equipment=eq.id))]


def _render(request: Request, db: Db, eq: EquipmentInfo, *,
            shifts: list[ShiftRow] | None = None,
            exceptions: list[ExceptionRow] | None = None, errors: list[str] | None = None,
            wrong_rows: set[tuple[str, int]] | None = None, reason: str = "",
            done: str | None = None, conflict: bool = False, status: int = 200
            ) -> HTMLResponse:
    found = calendars.effective(db, eq)
    if shifts is None or exceptions is None:
        shifts, exceptions = rows_of(found.calendar)
    zone = ZoneInfo(eq.timezone)
    return page(request, "calendar.html", status=status, nav="indicators", eq=eq,
                found=found, shifts=shifts, exceptions=exceptions, weekdays=WEEKDAYS,
                kinds=KINDS, errors=errors or [], wrong_rows=wrong_rows or set(),
                reason=reason, done=done, conflict=conflict,
                history=_history(db, eq, zone, lang_of(request)),
                base=f"/indicateurs/{eq.site}/{eq.id}/calendrier")


@router.get(_PATH, response_class=HTMLResponse)
def calendar_page(request: Request, person: CurrentPerson, registry: Registry, db: Db,
                  site: _Ident, equipment: _Ident,
                  fait: Annotated[str | None, Query(pattern="^(saved|reverted)$")] = None,
                  ) -> HTMLResponse:
    """The calendar in force, as a form (admins)."""
    eq = checked_equipment(request, registry, person, site, equipment)
    _admin(request, person)
    return _render(request, db, eq, done=fait)


def _done(eq: EquipmentInfo, what: str) -> RedirectResponse:
    return RedirectResponse(
        f"/indicateurs/{eq.site}/{eq.id}/calendrier?{urlencode({'fait': what})}",
        status_code=303)


def _version(form: dict[str, str]) -> int | None:
    raw = form.get("version", "")
    return int(raw) if raw.isdigit() else None


@router.post(_PATH, response_class=HTMLResponse, dependencies=[CsrfChecked])
async def save(request: Request, person: CurrentPerson, registry: Registry, db: Db,
               site: _Ident, equipment: _Ident) -> Response:
    """Store the form's calendar as a new version (admin)."""
    eq = checked_equipment(request, registry, person, site, equipment)
    _admin(request, person)
    lang = lang_of(request)
    form, days = _form_data(await request.form())
    shifts, exceptions = parse_form(form, days)
    reason = form.get("reason", "").strip()[:500]
    body, numbering = to_body(shifts, exceptions)
    try:
        calendar = ShiftCalendar.model_validate(body)
    except ValidationError as exc:
        found = calendar_errors(exc, numbering=numbering)
        wrong = {(str(e.loc[0]), numbering[str(e.loc[0])][int(e.loc[1])])
                 for e in found if len(e.loc) > 1 and isinstance(e.loc[1], int)
                 and str(e.loc[0]) in numbering}
        return _render(request, db, eq, shifts=shifts, exceptions=exceptions,
                       errors=[e.fr if lang == "fr" else e.en for e in found],
                       wrong_rows=wrong, reason=reason, status=422)
    try:
        calendars.store(db, eq, calendar, expected_version=_version(form),
                        actor=person.actor, via="console", reason=reason)
    except CalendarConflict:
        return _render(request, db, eq, shifts=shifts, exceptions=exceptions, reason=reason,
                       conflict=True, status=409)
    return _done(eq, "saved")


@router.post(f"{_PATH}/configuration", response_class=HTMLResponse,
             dependencies=[CsrfChecked])
async def revert(request: Request, person: CurrentPerson, registry: Registry, db: Db,
                 site: _Ident, equipment: _Ident) -> Response:
    """Hand the line back to its site configuration's calendar (a new version, audited)."""
    eq = checked_equipment(request, registry, person, site, equipment)
    _admin(request, person)
    form, _ = _form_data(await request.form())
    try:
        calendars.store(db, eq, None, expected_version=_version(form), actor=person.actor,
                        via="console", reason=form.get("reason", "").strip()[:500])
    except CalendarConflict:
        return _render(request, db, eq, conflict=True, status=409)
    return _done(eq, "reverted")
