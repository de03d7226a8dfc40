"""Planned time from a shift calendar, and the line's states split by it: hand-computed cases
across both changes of clocks (Europe/Paris), exceptions, and the hourly rollups' limit."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from api.accounting.calendar import availability, merged, minus, planned_time
from api.accounting.states import hours_by_spans, states_by_spans
from api.records.calendars import calendar_errors
from telemetry.shifts import ShiftCalendar

PARIS = "Europe/Paris"
H = 3_600_000
M = 60_000


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _local_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(PARIS)).timestamp() * 1000)


def _calendar(**parts: Any) -> ShiftCalendar:
    return ShiftCalendar.model_validate(parts)


def test_span_arithmetic() -> None:
    assert merged([(5, 9), (0, 2), (2, 3), (8, 12)]) == [(0, 3), (5, 12)]
    assert minus([(0, 10), (20, 30)], [(2, 4), (8, 22), (29, 40)]) == [(0, 2), (4, 8),
                                                                        (22, 29)]


def test_a_night_shift_on_the_autumn_change_of_clocks_lasts_seven_hours() -> None:
    # Sunday 25 October 2026: 03:00 CEST becomes 02:00 CET. A 00:00-06:00 shift runs from
    # 00:00+02:00 (24 Oct 22:00 UTC) to 06:00+01:00 (25 Oct 05:00 UTC): 7 h.
    calendar = _calendar(shifts=[{"days": ["sun"], "start": "00:00", "end": "06:00"}])
    planned = planned_time(calendar, start_ms=_ms("2026-10-24T00:00:00Z"),
                           end_ms=_ms("2026-10-27T00:00:00Z"), timezone=PARIS)
    assert planned.operation == [(_ms("2026-10-24T22:00:00Z"), _ms("2026-10-25T05:00:00Z"))]
    assert planned.busy_ms == 7 * H


def test_the_spring_change_of_clocks_takes_an_hour_off_a_shift_across_it() -> None:
    # Sunday 29 March 2026: 02:00 CET becomes 03:00 CEST. 00:00+01:00 (28 Mar 23:00 UTC) to
    # 06:00+02:00 (29 Mar 04:00 UTC): 5 h.
    calendar = _calendar(shifts=[{"days": ["sun"], "start": "00:00", "end": "06:00"}])
    planned = planned_time(calendar, start_ms=_ms("2026-03-28T00:00:00Z"),
                           end_ms=_ms("2026-03-30T00:00:00Z"), timezone=PARIS)
    assert planned.busy_ms == 5 * H
    # a day shift keeps its local hours on both sides of the change: 06:00 CET on Saturday
    # is 05:00 UTC, 06:00 CEST on Monday 04:00 UTC
    calendar = _calendar(shifts=[{"days": ["sat", "mon"], "start": "06:00", "end": "14:00"}])
    planned = planned_time(calendar, start_ms=_ms("2026-03-28T00:00:00Z"),
                           end_ms=_ms("2026-03-31T00:00:00Z"), timezone=PARIS)
    assert [a for a, _ in planned.busy] == [_ms("2026-03-28T05:00:00Z"),
                                            _ms("2026-03-30T04:00:00Z")]
    assert planned.busy_ms == 16 * H


def test_exceptions_closures_extra_shifts_and_planned_downtime() -> None:
    # Mon-Fri 06:00-14:00, week of 4 May 2026 (CEST). Friday 8 closed; Wednesday 6
    # 10:00-11:30 planned downtime; an extra shift on the closed Friday 10:00-12:00 (extra
    # wins over the closure) and one on Saturday 07:00-09:00.
    # POT = 4 × 8 h + 2 h + 2 h = 36 h; PDOT = 1.5 h; PBT = 34.5 h
    calendar = _calendar(
        shifts=[{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "06:00",
                 "end": "14:00"}],
        exceptions=[
            {"kind": "closed", "start": "2026-05-08", "end": "2026-05-08"},
            {"kind": "planned_downtime", "start": "2026-05-06T10:00",
             "end": "2026-05-06T11:30"},
            {"kind": "extra", "start": "2026-05-08T10:00", "end": "2026-05-08T12:00"},
            {"kind": "extra", "start": "2026-05-09T07:00", "end": "2026-05-09T09:00"}])
    planned = planned_time(calendar, start_ms=_local_ms("2026-05-04T00:00"),
                           end_ms=_local_ms("2026-05-11T00:00"), timezone=PARIS)
    assert planned.operation_ms == 36 * H
    assert planned.downtime_ms == 90 * M
    assert planned.busy_ms == 34 * H + 30 * M
    assert (_local_ms("2026-05-06T10:00"), _local_ms("2026-05-06T11:30")) not in planned.busy
    assert (_local_ms("2026-05-06T06:00"), _local_ms("2026-05-06T10:00")) in planned.busy


def test_planned_time_is_cut_to_the_period() -> None:
    # 08:00-10:00 local on a Monday, inside the 06:00-14:00 shift: 2 h
    calendar = _calendar(shifts=[{"days": ["mon"], "start": "06:00", "end": "14:00"}])
    planned = planned_time(calendar, start_ms=_local_ms("2026-05-04T08:00"),
                           end_ms=_local_ms("2026-05-04T10:00"), timezone=PARIS)
    assert planned.busy == [(_local_ms("2026-05-04T08:00"), _local_ms("2026-05-04T10:00"))]


def test_states_split_by_planned_time() -> None:
    # planned 10:00-12:00; readings (held up to 5 min): running 09:00-11:00, fault 11:00-11:30,
    # stopped 11:30-13:00. Inside: run 60 min, fault 30, stopped 30; outside: run 60, stopped 60
    t0 = _ms("2026-05-04T09:00:00Z")
    samples = ([(t0 + i * M, 1.0) for i in range(120)]
               + [(t0 + (120 + i) * M, 2.0) for i in range(30)]
               + [(t0 + (150 + i) * M, 0.0) for i in range(91)])
    spans = [(t0 + H, t0 + 3 * H)]
    split = states_by_spans(samples, spans=spans, start_ms=t0, end_ms=t0 + 4 * H,
                            max_gap_ms=5 * M)
    assert split.inside == {1.0: 60 * M, 2.0: 30 * M, 0.0: 30 * M}
    assert split.outside == {1.0: 60 * M, 2.0: 0, 0.0: 60 * M}


def test_hourly_rollups_split_only_on_whole_hours() -> None:
    t0 = _ms("2026-05-04T00:00:00Z")
    rows = [(t0, 1.0, 3600.0), (t0 + H, 1.0, 1800.0), (t0 + H, 0.0, 1800.0),
            (t0 + 2 * H, 1.0, 3600.0)]
    whole = hours_by_spans(rows, spans=[(t0 + H, t0 + 2 * H)])
    assert whole.inside == {1.0: 1800_000, 0.0: 1800_000}
    assert whole.outside == {1.0: 7200_000}
    assert whole.straddling == 0
    cut = hours_by_spans(rows, spans=[(t0 + H + 30 * M, t0 + 3 * H)])
    assert cut.straddling == 1  # the 01:00 hour: which of its seconds were planned is unknown
    planned = planned_time(_calendar(shifts=[{"days": ["mon"], "start": "02:30",
                                              "end": "05:00"}]),
                           start_ms=t0, end_ms=t0 + 3 * H, timezone="UTC")
    _, value, reason = availability(cut, planned, calendar="configuration", version=0)
    assert value is None
    assert reason is not None and "whole hour" in reason


def test_errors_name_the_rows_a_form_shows() -> None:
    # Form rows 0 and 3 filled (1 and 2 left empty): the calendar's shifts 0 and 1 are the
    # form's shifts 1 and 4.
    with pytest.raises(ValidationError) as caught:
        ShiftCalendar.model_validate({"shifts": [
            {"name": "matin", "days": ["mon"], "start": "06:00", "end": "14:00"},
            {"name": "relais", "days": ["mon"], "start": "13:00", "end": "15:00"}]})
    [error] = calendar_errors(caught.value, numbering={"shifts": [0, 3], "exceptions": []})
    assert error.fr == ("Les postes #1 (matin) et #4 (relais) se chevauchent le lundi "
                        "(13:00-14:00)")
    with pytest.raises(ValidationError) as caught:
        ShiftCalendar.model_validate({"shifts": [
            {"days": ["mon"], "start": "06:00", "end": "14:00"},
            {"days": ["mon"], "start": "15:00", "end": "25:00"}]})
    [error] = calendar_errors(caught.value, numbering={"shifts": [0, 3], "exceptions": []})
    assert error.fr.startswith("Poste 4, fin : Heure invalide « 25:00 »")
    assert error.en.startswith("Shift 4, end: Invalid time '25:00'")
