"""Calendar periods in Europe/Paris, across the clock changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from api.periods import Calendar, PeriodError, calendar_period, explicit_period

PARIS = "Europe/Paris"


@pytest.mark.parametrize("day,hours,start_utc", [
    (date(2026, 3, 29), 23, datetime(2026, 3, 28, 23, tzinfo=UTC)),  # spring forward
    (date(2026, 10, 25), 25, datetime(2026, 10, 24, 22, tzinfo=UTC)),  # fall back
    (date(2026, 6, 1), 24, datetime(2026, 5, 31, 22, tzinfo=UTC)),
])
def test_days_are_local_midnight_to_midnight(day: date, hours: int, start_utc: datetime) -> None:
    period = calendar_period(kind=Calendar.DAY, containing=day, timezone=PARIS)
    assert period.duration == timedelta(hours=hours)
    assert period.start == start_utc


def test_weeks_months_and_years() -> None:
    week = calendar_period(kind=Calendar.WEEK, containing=date(2026, 10, 28), timezone=PARIS)
    local = ZoneInfo(PARIS)
    assert (week.start.astimezone(local).date(), week.end.astimezone(local).date(),
            week.label) == (
        date(2026, 10, 26), date(2026, 11, 2), "week 2026-W44")
    march = calendar_period(kind=Calendar.MONTH, containing=date(2026, 3, 15), timezone=PARIS)
    assert march.duration == timedelta(days=31, hours=-1)
    december = calendar_period(kind=Calendar.MONTH, containing=date(2026, 12, 31),
                               timezone=PARIS)
    assert december.end == datetime(2026, 12, 31, 23, tzinfo=UTC)
    year = calendar_period(kind=Calendar.YEAR, containing=date(2026, 7, 14), timezone=PARIS)
    assert year.duration == timedelta(days=365)
    assert year.start == datetime(2025, 12, 31, 23, tzinfo=UTC)


def test_explicit_periods_need_zones_and_order() -> None:
    with pytest.raises(PeriodError, match="time zone"):
        explicit_period(start=datetime(2026, 1, 1), end=datetime(2026, 1, 2, tzinfo=UTC))
    with pytest.raises(PeriodError, match="after"):
        explicit_period(start=datetime(2026, 1, 2, tzinfo=UTC),
                        end=datetime(2026, 1, 1, tzinfo=UTC))
