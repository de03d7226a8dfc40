"""Reporting periods: any `[start, end)`, or a calendar day/week/month/year in the site's zone.

Calendar boundaries are local midnights (Europe/Paris for Ariège), so a day is 23 or 25 hours
long on the nights the clocks change; the UTC instants are what the queries use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Calendar(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO week, Monday to Monday
    MONTH = "month"
    YEAR = "year"


class PeriodError(ValueError):
    """A period that cannot be computed: naive times, end before start, out of range."""


# Monitoring data cannot predate the Unix epoch nor lie centuries ahead; bounding the range
# keeps date arithmetic (look-around windows, next year) away from datetime's limits.
EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def check_moment(moment: datetime, name: str) -> None:
    """Refuse a naive time or one outside [1970-01-02, 2200-01-01)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise PeriodError(f"{name} needs a time zone, e.g. 2026-11-21T10:00:00Z")
    if not EARLIEST <= moment < LATEST:
        raise PeriodError(f"{name} must lie between {EARLIEST.date()} and {LATEST.date()}")


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime
    label: str

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)

    @property
    def duration(self) -> timedelta:
        # Not `end - start`: Python subtracts two times of the same zone object as wall
        # clock times, which is an hour off across a clock change.
        return timedelta(milliseconds=self.end_ms - self.start_ms)


def calendar_period(*, kind: Calendar, containing: date, timezone: str) -> Period:
    """The calendar period of `kind` that contains the local date `containing`."""
    zone = ZoneInfo(timezone)
    if not EARLIEST.date() < containing < LATEST.date().replace(year=LATEST.year - 1):
        raise PeriodError(f"date must lie between {EARLIEST.date()} and {LATEST.year - 1}")
    if kind is Calendar.DAY:
        first, after = containing, containing + timedelta(days=1)
        label = containing.isoformat()
    elif kind is Calendar.WEEK:
        first = containing - timedelta(days=containing.weekday())
        after = first + timedelta(days=7)
        year, week, _ = containing.isocalendar()
        label = f"{year}-W{week:02d}"
    elif kind is Calendar.MONTH:
        first = containing.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
        label = first.strftime("%Y-%m")
    else:
        first = containing.replace(month=1, day=1)
        after = first.replace(year=first.year + 1)
        label = str(first.year)
    # Local midnight always exists in Europe/Paris (clocks change at 02:00/03:00). The
    # instants are kept in UTC so that arithmetic on them is never wall-clock arithmetic.
    return Period(start=datetime.combine(first, time(), zone).astimezone(UTC),
                  end=datetime.combine(after, time(), zone).astimezone(UTC),
                  label=f"{kind.value} {label}")


def explicit_period(*, start: datetime, end: datetime) -> Period:
    """`[start, end)` as given; both need a time zone."""
    check_moment(start, "start")
    check_moment(end, "end")
    if end <= start:
        raise PeriodError("end must be after start")
    return Period(start=start, end=end, label=f"{start.isoformat()}/{end.isoformat()}")
