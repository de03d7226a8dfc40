"""Planned production time of a period, from a line's shift calendar (`telemetry.shifts`).

ISO 22400-2:2014 splits a work unit's time into planned operation time (POT: the shifts, less
holidays and closures, plus extra shifts), planned down time (PDOT: planned stops inside it)
and planned busy time (PBT = POT − PDOT), against which availability is measured (APT / PBT;
docs/sources.md#iso-22400-2-availability). Here each is a set of UTC instants, as sorted
disjoint `[start_ms, end_ms)` spans, cut to the period: local wall-clock hours become instants
through the site's zone, so a shift keeps its local hours when the clocks change (and the
night of the change is an hour shorter or longer).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from api.accounting.states import StateSplit, hours_by_spans, states_by_spans
from api.periods import Period
from api.schemas import PlannedTimeOut
from api.sites import EquipmentInfo, SensorInfo
from api.store import ReadingsStore
from telemetry.shifts import WEEKDAYS, CalendarException, ExceptionKind, ShiftCalendar, clock

Span = tuple[int, int]  # [start_ms, end_ms)


def merged(spans: Iterable[Span]) -> list[Span]:
    """The union of `spans`, as sorted disjoint spans (touching spans joined)."""
    out: list[Span] = []
    for a, b in sorted(s for s in spans if s[1] > s[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def minus(spans: list[Span], removed: list[Span]) -> list[Span]:
    """`spans` without `removed` (both sorted and disjoint)."""
    out: list[Span] = []
    for a, b in spans:
        cursor = a
        for c, d in removed:
            if d <= cursor or c >= b:
                continue
            if c > cursor:
                out.append((cursor, c))
            cursor = max(cursor, d)
        if cursor < b:
            out.append((cursor, b))
    return out


def total(spans: Iterable[Span]) -> int:
    return sum(b - a for a, b in spans)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _local(day: date, at: time | None, zone: ZoneInfo) -> int:
    """A local wall-clock time as an instant; `None` is the day's end (next midnight). A time
    that does not exist (the hour skipped in spring) reads with the offset before the change,
    i.e. an hour later on the new clock, as zoneinfo does."""
    if at is None:
        return _ms(datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone))
    return _ms(datetime.combine(day, at, tzinfo=zone))


def exception_span(exception: CalendarException, zone: ZoneInfo) -> Span:
    """An exception's instants: whole local days (end day included), or local times."""
    start, end = exception.start, exception.end
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        first = start if not isinstance(start, datetime) else start.date()
        last = end if not isinstance(end, datetime) else end.date()
        return _local(first, time(0), zone), _local(last, None, zone)
    return (_ms(start if start.tzinfo else start.replace(tzinfo=zone)),
            _ms(end if end.tzinfo else end.replace(tzinfo=zone)))


@dataclass(frozen=True, slots=True)
class PlannedTime:
    """The planned time of one period: operation (POT), busy (PBT) and its planned down
    time (PDOT = POT − PBT), each as spans within the period."""

    operation: list[Span]
    busy: list[Span]

    @property
    def operation_ms(self) -> int:
        return total(self.operation)

    @property
    def busy_ms(self) -> int:
        return total(self.busy)

    @property
    def downtime_ms(self) -> int:
        return self.operation_ms - self.busy_ms


def planned_time(calendar: ShiftCalendar, *, start_ms: int, end_ms: int,
                 timezone: str) -> PlannedTime:
    """Weekly shifts − closures + extra shifts = planned operation time; − planned downtime
    = planned busy time; both cut to `[start_ms, end_ms)`."""
    zone = ZoneInfo(timezone)
    first = datetime.fromtimestamp(start_ms / 1000, zone).date() - timedelta(days=1)
    last = datetime.fromtimestamp(end_ms / 1000, zone).date()
    weekly: list[Span] = []
    day = first
    while day <= last:
        name = WEEKDAYS[day.weekday()]
        weekly += [(_local(day, clock(s.start), zone), _local(day, clock(s.end), zone))
                   for s in calendar.shifts if name in s.days]
        day += timedelta(days=1)

    def of(kind: ExceptionKind) -> list[Span]:
        return merged(exception_span(e, zone) for e in calendar.exceptions if e.kind is kind)

    operation = merged([*minus(merged(weekly), of(ExceptionKind.CLOSED)),
                        *of(ExceptionKind.EXTRA)])
    period = [(start_ms, end_ms)]
    operation = minus(period, minus(period, operation))  # cut to the period
    busy = minus(operation, of(ExceptionKind.PLANNED_DOWNTIME))
    return PlannedTime(operation=operation, busy=busy)


# `line_state` (docs/roles.md): 0 stopped, 1 running, 2 fault; any other value is not running.
RUNNING, FAULT = 1.0, 2.0
_HOUR_MS = 3_600_000


def line_states(store: ReadingsStore, equipment: EquipmentInfo, sensor: SensorInfo, *,
                period: Period, busy: list[Span], rollups: bool, around: timedelta,
                max_gap: timedelta) -> StateSplit:
    """The line's states inside and outside planned busy time: from raw readings (one query
    for the period), or from the hourly rollups for periods read from rollups."""
    if rollups:
        rows = store.state_hours(site=equipment.site, sensor=sensor.id, start=period.start,
                                 end=period.end)
        return hours_by_spans(rows, spans=busy)
    samples, _ = store.counter_samples(site=equipment.site, sensor=sensor.id,
                                       start=period.start, end=period.end, around=around)
    return states_by_spans(samples, spans=busy, start_ms=period.start_ms, end_ms=period.end_ms,
                           max_gap_ms=int(max_gap.total_seconds() * 1000))


def availability(split: StateSplit, planned: PlannedTime, *, calendar: str,
                 version: int) -> tuple[PlannedTimeOut, float | None, str | None]:
    """OEE availability = run time / planned busy time (ISO 22400-2: APT / PBT), the
    downtime being unplanned stops and faults during it. Planned busy time without readings is
    neither run nor downtime: it is reported (`unknown_h`) and left out of the ratio."""
    run = split.inside.get(RUNNING, 0)
    fault = split.inside.get(FAULT, 0)
    known = sum(split.inside.values())
    out = PlannedTimeOut(
        calendar=calendar, calendar_version=version,
        planned_operation_h=planned.operation_ms / _HOUR_MS,
        planned_downtime_h=planned.downtime_ms / _HOUR_MS,
        planned_busy_h=planned.busy_ms / _HOUR_MS, run_h=run / _HOUR_MS,
        unplanned_stop_h=(known - run - fault) / _HOUR_MS, fault_h=fault / _HOUR_MS,
        unknown_h=max(0, planned.busy_ms - known) / _HOUR_MS,
        running_outside_planned_h=split.outside.get(RUNNING, 0) / _HOUR_MS)
    if split.straddling:
        return out, None, (f"{split.straddling} hourly rollup(s) are cut by a shift or "
                           "exception boundary that is not on a whole hour: periods over 31 "
                           "days are read from hourly rollups, which cannot split an hour")
    if not planned.busy_ms:
        return out, None, "no planned production time in the period (shift calendar)"
    if not known:
        return out, None, "no line_state reading during the planned production time"
    return out, run / known, None
