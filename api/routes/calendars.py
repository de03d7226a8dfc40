"""The shift calendar of an equipment: its planned production time (OEE availability).

Admins only, read and write. `GET` answers the calendar in force (the admin's latest version,
else the site configuration's default) and the configuration's default beside it; `PUT` stores
a new version (every version is kept, each change audited in `record_audit`, kind
`shift_calendars`) from the version named in the body or an `If-Match` header (409 when another
was stored since); `"calendar": null` hands the equipment back to its configuration's default.
A calendar that breaks a rule is refused (422) with, for each error, where it is and why, in
French and English (`telemetry.shifts`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from api.deps import ADMIN_ONLY, Caller, Db, Equipment
from api.records import calendars
from api.records.calendars import CalendarConflict, calendar_errors
from api.routes.records import IfMatch, _actor, _version
from api.sites import EquipmentInfo
from telemetry.shifts import ShiftCalendar

router = APIRouter(tags=["shift calendars"])
_PATH = "/sites/{site}/equipment/{equipment}/calendar"


class CalendarIn(BaseModel):
    """The PUT body. `calendar` is checked by the route (not by FastAPI) so that its errors
    come back in French and English."""

    calendar: dict[str, Any] | None = Field(
        description="weekly `shifts` and dated `exceptions` (docs/indicators.md); null: back "
                    "to the site configuration's calendar")
    version: int | None = Field(default=None, description="the version the change started "
                                                          "from (or an If-Match header)")
    reason: str = Field(default="", max_length=500)


class CalendarOut(BaseModel):
    site: str
    equipment: str
    timezone: str
    source: str = Field(description="`api` (an admin's), `configuration` or `none`")
    version: int = Field(description="the latest stored version; 0 when none was stored")
    calendar: ShiftCalendar | None = Field(description="the calendar in force")
    configuration: ShiftCalendar | None = Field(description="the site configuration's default")
    set_by: str | None = None
    set_at: datetime | None = None
    reason: str | None = None


class CalendarVersionOut(BaseModel):
    version: int
    calendar: ShiftCalendar | None = Field(description="null: back to the configuration's")
    set_by: str
    set_at: datetime
    via: str
    reason: str


def view(db: Db, equipment: EquipmentInfo) -> CalendarOut:
    found = calendars.effective(db, equipment)
    row = found.row
    return CalendarOut(site=equipment.site, equipment=equipment.id,
                       timezone=equipment.timezone, source=found.source, version=found.version,
                       calendar=found.calendar, configuration=equipment.calendar,
                       set_by=row.set_by if row else None, set_at=row.set_at if row else None,
                       reason=row.reason if row else None)


@router.get(_PATH, response_model=CalendarOut, dependencies=[ADMIN_ONLY])
def get_calendar(equipment: Equipment, db: Db) -> CalendarOut:
    """The calendar in force and the configuration's default."""
    return view(db, equipment)


def refusal(exc: ValidationError) -> JSONResponse:
    """422 with each error's place and message (technical, French, English)."""
    return JSONResponse(status_code=422, content={"detail": [
        {"loc": ["body", "calendar", *e.loc], "msg": e.api, "fr": e.fr, "en": e.en}
        for e in calendar_errors(exc)]})


@router.put(_PATH, response_model=CalendarOut, dependencies=[ADMIN_ONLY],
            responses={409: {"description": "another version was stored since"},
                       422: {"description": "the calendar breaks a rule: where and why"}})
def put_calendar(equipment: Equipment, body: CalendarIn, caller: Caller, db: Db,
                 if_match: IfMatch = None) -> Any:
    """Store a new version of the calendar (null: back to the configuration's)."""
    try:
        calendar = (None if body.calendar is None
                    else ShiftCalendar.model_validate(body.calendar))
    except ValidationError as exc:
        return refusal(exc)
    expected = _version(body.version, if_match)
    try:
        calendars.store(db, equipment, calendar, expected_version=expected,
                        actor=_actor(caller), via="api", reason=body.reason)
    except CalendarConflict as exc:
        raise HTTPException(409, str(exc)) from None
    return view(db, equipment)


@router.get(f"{_PATH}/history", response_model=list[CalendarVersionOut],
            dependencies=[ADMIN_ONLY])
def calendar_history(equipment: Equipment, db: Db) -> list[CalendarVersionOut]:
    """Every stored version, oldest first: who set it, when, through what, and why."""
    return [CalendarVersionOut(
        version=row.version, set_by=row.set_by, set_at=row.set_at, via=row.via,
        reason=row.reason,
        calendar=None if row.calendar is None else ShiftCalendar.model_validate(row.calendar))
        for row in calendars.versions(db, site=equipment.site, equipment=equipment.id)]
