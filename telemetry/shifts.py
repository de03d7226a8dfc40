"""A production line's shift calendar: when production is planned, in the site's time zone.

OEE availability is run time over planned time (ISO 22400-2:2014, KPI "Availability" = APT /
PBT, docs/sources.md#iso-22400-2-availability); without a calendar the planned time is unknown,
and it is said, never assumed. A calendar is the weekly shifts (wall-clock hours on named
weekdays, so a shift keeps its local hours across a change of clocks) and dated exceptions:

- `closed`: a holiday or closure, no production planned (out of the planned operation time);
- `planned_downtime`: planned maintenance, a planned stop, a changeover the plan schedules
  (ISO 22400's planned down time: out of the planned busy time, so not counted against
  availability);
- `extra`: an extra shift (a Saturday morning), which adds planned time.

Planned time = weekly shifts, minus closures, plus extra shifts, minus planned downtime (an
extra shift declared on a holiday is deliberate: it wins over the closure). The rules of a
calendar are checked here, with messages in French and English for the console, so that the
site configuration (`dynamo config check`), the api and the console refuse the same mistakes.
"""

from __future__ import annotations

import itertools
import re
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_FR = {"mon": "lundi", "tue": "mardi", "wed": "mercredi", "thu": "jeudi",
              "fri": "vendredi", "sat": "samedi", "sun": "dimanche"}
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# code → (technical English for the api and `dynamo config check`, French, English): what an
# admin reads in the console. Placeholders come from the error's context.
MESSAGES: dict[str, tuple[str, str, str]] = {
    "bad_weekday": (
        "unknown weekday '{value}'; one of: mon, tue, wed, thu, fri, sat, sun",
        "Jour inconnu « {value} » : lun. à dim. s'écrivent mon, tue, wed, thu, fri, sat, sun",
        "Unknown weekday '{value}': one of mon, tue, wed, thu, fri, sat, sun"),
    "repeated_weekday": (
        "weekday '{value}' is listed twice", "Le jour « {value} » est répété",
        "Weekday '{value}' is listed twice"),
    "bad_clock": (
        "'{value}' is not a time of day HH:MM (00:00 to 24:00)",
        "Heure invalide « {value} » : attendu HH:MM, de 00:00 à 24:00",
        "Invalid time '{value}': HH:MM from 00:00 to 24:00 expected"),
    "shift_end_before_start": (
        "the shift ends at {end}, not after its start {start}; a night shift is two shifts "
        "split at midnight (22:00-24:00, then 00:00-06:00 the next day)",
        "La fin du poste ({end}) doit être après son début ({start}) ; un poste de nuit "
        "s'écrit en deux postes coupés à minuit (22:00-24:00 puis 00:00-06:00 le lendemain)",
        "The shift's end ({end}) must be after its start ({start}); a night shift is two "
        "shifts split at midnight (22:00-24:00, then 00:00-06:00 the next day)"),
    "shifts_overlap": (
        "shifts {first} and {second} overlap on {day} ({span})",
        "Les postes {first} et {second} se chevauchent le {day_fr} ({span})",
        "Shifts {first} and {second} overlap on {day} ({span})"),
    "bad_moment": (
        "'{value}' is neither a date YYYY-MM-DD nor a local date and time YYYY-MM-DDTHH:MM",
        "« {value} » n'est ni une date AAAA-MM-JJ ni une date et heure AAAA-MM-JJTHH:MM",
        "'{value}' is neither a date YYYY-MM-DD nor a date and time YYYY-MM-DDTHH:MM"),
    "mixed_moments": (
        "start and end must both be dates (whole days) or both dates and times",
        "Le début et la fin doivent être tous deux des dates (journées entières) ou tous deux "
        "des dates et heures",
        "Start and end must both be dates (whole days) or both dates and times"),
    "exception_end_before_start": (
        "the exception ends ({end}) before it starts ({start})",
        "La fin de l'exception ({end}) est avant son début ({start})",
        "The exception's end ({end}) is before its start ({start})"),
    "exception_empty": (
        "the exception ends when it starts ({start}): it covers no time; whole days are "
        "dates, end included",
        "L'exception finit quand elle commence ({start}) : elle ne couvre aucune durée ; des "
        "journées entières s'écrivent en dates, fin comprise",
        "The exception ends when it starts ({start}): it covers no time; whole days are "
        "dates, end included"),
    "no_shift": (
        "a calendar needs at least one weekly shift or one extra shift",
        "Un calendrier doit avoir au moins un poste hebdomadaire ou un poste supplémentaire",
        "A calendar needs at least one weekly shift or one extra shift"),
}


def error(code: str, **context: Any) -> PydanticCustomError:
    """A calendar rule broken: its technical message, its code (French and English by
    `MESSAGES`), and its context."""
    return PydanticCustomError(code, MESSAGES[code][0], context)


def translated(code: str, context: dict[str, Any], lang: str) -> str | None:
    """A calendar error in French or English, None for an error that is not one of ours."""
    found = MESSAGES.get(code)
    if found is None:
        return None
    try:
        return (found[1] if lang == "fr" else found[2]).format(**context)
    except (KeyError, IndexError):
        return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def clock(text: str) -> time | None:
    """`HH:MM` → a time of day; `24:00` → None (the end of the day)."""
    if text == "24:00":
        return None
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def minutes(text: str) -> int:
    hours, mins = text.split(":")
    return int(hours) * 60 + int(mins)


class Shift(_Strict):
    """A weekly shift: on each of `days`, from `start` to `end`, local wall-clock time."""

    days: tuple[str, ...] = Field(min_length=1)
    start: str
    end: str
    name: str = Field(default="", max_length=60)

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            seen: set[str] = set()
            for day in value:
                text = str(day).strip().lower()
                if text not in WEEKDAYS:
                    raise error("bad_weekday", value=str(day))
                if text in seen:
                    raise error("repeated_weekday", value=text)
                seen.add(text)
            return tuple(str(d).strip().lower() for d in value)
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 06:00 as sexagesimal 360 (minutes): take it back.
            value = f"{value // 60:02d}:{value % 60:02d}"
        text = str(value).strip()
        if not _CLOCK.match(text):
            raise error("bad_clock", value=text)
        return text

    @model_validator(mode="after")
    def _order(self) -> Shift:
        if minutes(self.end) <= minutes(self.start):
            raise error("shift_end_before_start", start=self.start, end=self.end)
        return self

    def label(self, index: int) -> str:
        return f"#{index + 1}" + (f" ({self.name})" if self.name else "")


class ExceptionKind(StrEnum):
    CLOSED = "closed"
    PLANNED_DOWNTIME = "planned_downtime"
    EXTRA = "extra"


def _moment(value: Any) -> date | datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if _DAY.match(text):
            return date.fromisoformat(text)
        return datetime.fromisoformat(text)
    except ValueError:
        raise error("bad_moment", value=text) from None


class CalendarException(_Strict):
    """A dated change to the weekly shifts. Dates are whole local days, the end day included
    (`2026-05-01` to `2026-05-01` is the 1st of May); dates and times are local wall-clock,
    the end excluded (`2026-05-06T10:00` to `2026-05-06T12:00` is two hours). A time with a
    UTC offset is taken as that instant."""

    kind: ExceptionKind
    start: date | datetime
    end: date | datetime
    reason: str = Field(default="", max_length=200)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        return _moment(value)

    @model_validator(mode="after")
    def _order(self) -> CalendarException:
        start, end = self.start, self.end
        if isinstance(start, datetime) != isinstance(end, datetime):
            raise error("mixed_moments")
        if isinstance(start, datetime) and isinstance(end, datetime):
            # Both naive (local) or both with an offset compare as they are; a mix compares
            # as wall-clock times (the zone is only known to the site).
            same = (start.tzinfo is None) == (end.tzinfo is None)
            a = start if same else start.replace(tzinfo=None)
            b = end if same else end.replace(tzinfo=None)
            if b < a:
                raise error("exception_end_before_start", start=str(start), end=str(end))
            if b == a:
                raise error("exception_empty", start=str(start))
        elif end < start:
            raise error("exception_end_before_start", start=str(start), end=str(end))
        return self

    @property
    def whole_days(self) -> bool:
        return not isinstance(self.start, datetime)


class ShiftCalendar(_Strict):
    """Weekly shifts and dated exceptions of one line (see the module's docstring)."""

    shifts: tuple[Shift, ...] = ()
    exceptions: tuple[CalendarException, ...] = ()

    @model_validator(mode="after")
    def _no_overlap(self) -> ShiftCalendar:
        if not self.shifts and not any(e.kind is ExceptionKind.EXTRA for e in self.exceptions):
            raise error("no_shift")
        for day in WEEKDAYS:
            spans = sorted((minutes(s.start), minutes(s.end), i)
                           for i, s in enumerate(self.shifts) if day in s.days)
            for (_, a1, i), (b0, b1, j) in itertools.pairwise(spans):
                if b0 < a1:
                    first, second = sorted((i, j))
                    raise error("shifts_overlap", first=self.shifts[first].label(first),
                                second=self.shifts[second].label(second), day=day,
                                first_index=first, second_index=second,
                                day_fr=WEEKDAY_FR[day], span=f"{_hhmm(b0)}-{_hhmm(min(a1, b1))}")
        return self


def _hhmm(total: int) -> str:
    return f"{total // 60:02d}:{total % 60:02d}"
