"""Shift calendars set by an admin: per site and equipment, every version kept.

The site configuration's calendar (`calendar:` of the equipment) is the default; an admin's
calendar overrides it from the moment it is stored. A change never overwrites: it adds a version
(the previous one stays readable, with who set it, when and why), names the version it started
from (a concurrent change is refused), and leaves a row in the records' audit trail
(`record_audit`, kind `shift_calendars`), where a published figure's verification finds it.
A version with no calendar hands the equipment back to its configuration's default.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import JSON, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from api.records.tables import Base, RecordAudit, UtcDateTime
from api.records.validation import Lang, message
from api.sites import EquipmentInfo
from telemetry.shifts import ShiftCalendar, translated

KIND = "shift_calendars"  # the audit trail's kind
Via = Literal["api", "console", "cli"]


class ShiftCalendarVersion(Base):
    """One version of an equipment's calendar; the highest version is in force."""

    __tablename__ = "shift_calendars"
    __table_args__ = (UniqueConstraint("site", "equipment", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    equipment: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    # The calendar as its model dumps it (JSON mode); None: back to the configuration's.
    calendar: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    set_by: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(UtcDateTime)
    via: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(Text, default="")


class CalendarConflict(Exception):
    """The calendar changed since the version the caller started from: nothing was written."""

    def __init__(self, current: ShiftCalendarVersion | None, expected: int) -> None:
        stored = current.version if current else 0
        who = f" by {current.set_by} at {current.set_at.isoformat()}" if current else ""
        super().__init__(f"modified in the meantime{who}: version {stored} is stored, the "
                         f"change started from {expected}; reload it")
        self.current_version = stored


@dataclass(frozen=True, slots=True)
class Effective:
    """The calendar in force for an equipment and where it comes from."""

    calendar: ShiftCalendar | None
    source: Literal["api", "configuration", "none"]
    version: int  # the stored version (0: none stored)
    row: ShiftCalendarVersion | None


def versions(db: Session, *, site: str, equipment: str) -> list[ShiftCalendarVersion]:
    """Every stored version, oldest first."""
    return list(db.scalars(select(ShiftCalendarVersion)
                           .filter_by(site=site, equipment=equipment)
                           .order_by(ShiftCalendarVersion.version)))


def latest(db: Session, *, site: str, equipment: str) -> ShiftCalendarVersion | None:
    return db.scalars(select(ShiftCalendarVersion).filter_by(site=site, equipment=equipment)
                      .order_by(ShiftCalendarVersion.version.desc())).first()


def effective(db: Session, equipment: EquipmentInfo) -> Effective:
    """The admin's latest calendar, else the configuration's, else none."""
    row = latest(db, site=equipment.site, equipment=equipment.id)
    if row is not None and row.calendar is not None:
        return Effective(ShiftCalendar.model_validate(row.calendar), "api", row.version, row)
    version = row.version if row is not None else 0
    if equipment.calendar is not None:
        return Effective(equipment.calendar, "configuration", version, row)
    return Effective(None, "none", version, row)


def _dump(calendar: ShiftCalendar | None) -> dict[str, Any] | None:
    return None if calendar is None else calendar.model_dump(mode="json")


def store(db: Session, equipment: EquipmentInfo, calendar: ShiftCalendar | None, *,
          expected_version: int | None, actor: str, via: Via, reason: str = "") -> Effective:
    """Add a version (None: back to the configuration's calendar) and audit it. With
    `expected_version`, refuse when another version was stored since (`CalendarConflict`)."""
    before = effective(db, equipment)
    if expected_version is not None and expected_version != before.version:
        raise CalendarConflict(before.row, expected_version)
    now = datetime.now(UTC)
    row = ShiftCalendarVersion(site=equipment.site, equipment=equipment.id,
                               version=before.version + 1, calendar=_dump(calendar),
                               set_by=actor, set_at=now, via=via, reason=reason)
    db.add(row)
    try:
        db.flush()
    except IntegrityError:
        # Another writer stored the same version number first.
        db.rollback()
        raise CalendarConflict(latest(db, site=equipment.site, equipment=equipment.id),
                               before.version) from None
    db.add(RecordAudit(
        kind=KIND, record_id=row.id, site=equipment.site, equipment=equipment.id,
        action="edit" if before.row is not None else "create", actor=actor, via=via, at=now,
        before={"version": before.version, "source": before.source,
                "calendar": _dump(before.calendar)},
        after={"version": row.version, "source": "api" if calendar else "configuration",
               "calendar": _dump(calendar if calendar is not None else equipment.calendar)},
        reason=reason))
    db.commit()
    return effective(db, equipment)


# Where an error is, in an admin's words: the calendar's parts and fields.
_PARTS = {"shifts": ("Poste", "Shift"), "exceptions": ("Exception", "Exception")}
_FIELDS = {"days": ("jours", "days"), "start": ("début", "start"), "end": ("fin", "end"),
           "kind": ("type", "kind"), "reason": ("motif", "reason"), "name": ("nom", "name")}


def where(loc: tuple[int | str, ...], lang: Lang,
          numbering: dict[str, list[int]] | None = None) -> str:
    """`('shifts', 1, 'end')` → "Poste 2, fin" / "Shift 2, end"; the whole calendar → "".
    `numbering` maps each part's items to the rows a form showed them on (empty rows
    skipped), so that the number is the row the admin sees."""
    pick = 0 if lang == "fr" else 1
    words: list[str] = []
    for i, part in enumerate(loc):
        if isinstance(part, int):
            continue
        if part in _PARTS:
            following = loc[i + 1] if i + 1 < len(loc) else None
            index = following if isinstance(following, int) else None
            if index is not None and numbering and part in numbering \
                    and index < len(numbering[part]):
                index = numbering[part][index]
            words.append(_PARTS[part][pick] + (f" {index + 1}" if index is not None else ""))
        elif part in _FIELDS:
            words.append(_FIELDS[part][pick])
    return ", ".join(words)


@dataclass(frozen=True, slots=True)
class CalendarError:
    """One broken rule: its place in the calendar, the api's technical message, and what an
    admin reads in French and English."""

    loc: tuple[int | str, ...]
    api: str
    fr: str
    en: str


def calendar_errors(exc: ValidationError, *,
                    numbering: dict[str, list[int]] | None = None) -> list[CalendarError]:
    """Every error of a calendar's validation, each with its French and English text (the
    calendar's own rules from `telemetry.shifts`, pydantic's through the records' words)."""
    out: list[CalendarError] = []
    for e in exc.errors(include_url=False):
        loc = tuple(p for p in e["loc"] if isinstance(p, int | str))
        context = dict(e.get("ctx") or {})
        field = next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
        if numbering and e["type"] == "shifts_overlap":
            # The shifts' numbers as the form shows them (its empty rows skipped).
            rows = numbering.get("shifts", [])
            for key in ("first", "second"):
                index = context.get(f"{key}_index")
                if isinstance(index, int) and index < len(rows):
                    context[key] = str(context[key]).replace(f"#{index + 1}",
                                                             f"#{rows[index] + 1}", 1)
        texts = []
        for lang in ("fr", "en"):
            text = translated(e["type"], context, lang) or message(e["type"], field, context,
                                                                   lang)
            place = where(loc, lang, numbering)
            texts.append(f"{place} : {text}" if place and lang == "fr"
                         else f"{place}: {text}" if place else text)
        out.append(CalendarError(loc=loc, api=f"{'.'.join(map(str, loc)) or 'calendar'}: "
                                               f"{e['msg']}", fr=texts[0], en=texts[1]))
    return out
