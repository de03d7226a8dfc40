"""What is missing: per equipment, the records whose absence keeps an indicator empty, each with
a link to the form that fixes it.

The rules are data (`FIELD_RULES`, `RUN_RULES`, the material-lot rule); their French and English
texts live in `messages/missing.yaml` under `rule_<id>`. A machine's runs come from the same
held-state evidence the indicators use (`api.accounting.states`): a state reading holds until the
next one, for no longer than the gap limit.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from api.console.auth import CurrentPerson
from api.console.i18n import Lang, translate
from api.console.render import lang_of, moment, page
from api.deps import Db
from api.records.live import live
from api.records.tables import Batch, MaterialLot
from api.reports.language import number
from api.settings import ApiSettings
from api.sites import EquipmentInfo, SiteRegistry
from api.store import ReadingsStore
from telemetry.influx.influxql import quote_ident, tag_equals, time_literal
from telemetry.influx.schema import READINGS, VALUE_FIELD

router = APIRouter()

LOOKBACK = timedelta(days=14)
UNCOVERED_MIN = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class FieldRule:
    """A batch that ended without `field`: the indicators of its equipment skip it."""

    id: str
    equipment_kinds: frozenset[str]
    field: str


@dataclass(frozen=True, slots=True)
class RunRule:
    """A machine is running while its `role` state sensor holds `running`."""

    equipment_kind: str
    role: str
    running: float


FIELD_RULES: tuple[FieldRule, ...] = (
    FieldRule("moisture_out", frozenset({"dryer"}), "moisture_out_pct"),
    FieldRule("moisture_in", frozenset({"dryer"}), "moisture_in_pct"),
    FieldRule("mass_in", frozenset({"dryer", "freezer"}), "mass_in_kg"),
    FieldRule("material_lot", frozenset({"packaging"}), "material_lot_id"),
)
# A freezer holds its cabinet cold all day long: its compressor's runs are not production.
RUN_RULES: dict[str, RunRule] = {rule.equipment_kind: rule for rule in (
    RunRule("dryer", "fan_running", 1.0),
    RunRule("packaging", "line_state", 1.0),
)}
MATERIAL_RULE = "no_lot"
RUN_RULE = "uncovered_run"


@dataclass(frozen=True, slots=True)
class Item:
    """One thing to complete: the rule it breaks, what it is about, where to fix it."""

    rule: str
    start: datetime | None  # None: not about a stretch of time
    end: datetime | None
    link: str
    record_id: int | None = None
    label: str = ""  # the batch's product, the lot's material


def running_spans(samples: Sequence[tuple[int, float]], *, start_ms: int, end_ms: int,
                  max_gap_ms: int, running: float,
                  joined: frozenset[int] = frozenset()) -> list[tuple[int, int]]:
    """The `[start, end)` stretches of `[start_ms, end_ms)` where the held state was `running`,
    contiguous stretches merged; a gap over `max_gap_ms` ends a stretch (unknown is not
    running). A sample whose time is in `joined` holds until the next one whatever the gap:
    the readings between them, left out, held its value without a gap (`state_changes`)."""
    spans: list[tuple[int, int]] = []
    for (t, value), (following, _) in itertools.pairwise(sorted(samples)):
        if value != running or (following - t > max_gap_ms and t not in joined):
            continue
        lo, hi = max(t, start_ms), min(following, end_ms)
        if hi <= lo:
            continue
        if spans and spans[-1][1] == lo:
            spans[-1] = (spans[-1][0], hi)
        else:
            spans.append((lo, hi))
    return spans


def uncovered(spans: Sequence[tuple[int, int]], covered: Sequence[tuple[int, int]], *,
              min_ms: int) -> list[tuple[int, int]]:
    """The parts of `spans` outside every `covered` interval that last `min_ms` or more."""
    found: list[tuple[int, int]] = []
    ordered = sorted(covered)
    for lo, hi in spans:
        cursor = lo
        for c_lo, c_hi in ordered:
            if c_hi <= cursor or c_lo >= hi:
                continue
            if c_lo > cursor:
                found.append((cursor, c_lo))
            cursor = max(cursor, c_hi)
            if cursor >= hi:
                break
        if cursor < hi:
            found.append((cursor, hi))
    return [(lo, hi) for lo, hi in found if hi - lo >= min_ms]


def state_changes(store: ReadingsStore, *, site: str, sensor: str, start: datetime,
                  end: datetime, around: timedelta, max_gap_ms: int
                  ) -> tuple[list[tuple[int, float]], frozenset[int]]:
    """What `running_spans` needs of a state sensor's good readings over `[start, end)` (with
    the nearest one beyond each end, as `ReadingsStore.counter_samples` gives them), without
    carrying every reading: InfluxDB keeps the ones that change nothing.

    Returned: the first and the last reading, every reading whose value differs from the one
    before or that comes after a gap over `max_gap_ms`, and the reading just before each of
    those; and the times of the readings that hold until the next one listed (every reading
    left out between them had the same value, none further apart than the limit). The spans
    found are those of the whole series. Two units within the period, or a sum of
    differences that does not land on the last value, fall back to the whole series."""
    where = (f"{tag_equals('site', site)} AND {tag_equals('sensor', sensor)}"
             f" AND {tag_equals('quality', 'good')}")
    value, measurement = quote_ident(VALUE_FIELD), quote_ident(READINGS)
    lo, hi = time_literal(start), time_literal(end)
    wide = (f"time >= {time_literal(start - around)}"
            f" AND time < {time_literal(end + around)}")
    statements = [
        f"SELECT last({value}) AS before FROM {measurement} WHERE {where}"
        f" AND time >= {time_literal(start - around)} AND time <= {lo} GROUP BY unit",
        f"SELECT first({value}) AS first FROM {measurement} WHERE {where}"
        f" AND time > {lo} AND time < {hi} GROUP BY unit",
        f"SELECT last({value}) AS last FROM {measurement} WHERE {where}"
        f" AND time > {lo} AND time < {hi} GROUP BY unit",
        f"SELECT first({value}) AS after FROM {measurement} WHERE {where}"
        f" AND time >= {hi} AND time < {time_literal(end + around)} GROUP BY unit",
        f"SELECT d, e FROM (SELECT difference({value}) AS d, elapsed({value}, 1ms) AS e"
        f" FROM {measurement} WHERE {where} AND {wide}) WHERE d <> 0 OR e > {max_gap_ms}",
    ]
    ends: dict[str, tuple[int, float]] = {}
    units: set[str] = set()
    changes: list[tuple[int, float, int]] = []
    for series in store.client.query(";".join(statements)):
        if "e" in series.columns:
            changes += [(int(row["time"]), float(row["d"] or 0.0), int(row["e"] or 0))
                        for row in series.rows()]
            continue
        units.add(series.tags.get("unit", ""))
        name = series.columns[-1]  # before, first, last or after
        for row in series.rows():
            if row[name] is not None:
                ends[name] = (int(row["time"]), float(row[name]))
    opening = ends.get("before") or ends.get("first")
    closing = ends.get("after") or ends.get("last")
    if len(units) > 1 or opening is None or closing is None:
        samples, _ = store.counter_samples(site=site, sensor=sensor, start=start, end=end,
                                           around=around)
        return samples, frozenset()
    held: dict[int, float] = {opening[0]: opening[1]}
    joined: set[int] = set()
    current_t, current = opening
    for t, step, elapsed in sorted(changes):
        if t <= opening[0] or t > closing[0]:
            continue
        previous_t = t - elapsed
        if previous_t > current_t:
            joined.add(current_t)  # readings in between held `current` without a gap
            held[previous_t] = current
        current = current + step
        held[t] = current
        current_t = t
    if closing[0] > current_t:
        joined.add(current_t)
        held[closing[0]] = current
    if held[closing[0]] != closing[1]:
        samples, _ = store.counter_samples(site=site, sensor=sensor, start=start, end=end,
                                           around=around)
        return samples, frozenset()
    return sorted(held.items()), frozenset(joined)


def local_input(moment: datetime, zone: str) -> str:
    """`moment` as a `datetime-local` field value in the site's time zone."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def _form(eq: EquipmentInfo, kind: str, suffix: str, **prefill: str) -> str:
    query = f"?{urlencode(prefill)}" if prefill else ""
    return f"/registres/{eq.site}/{eq.id}/{kind}/{suffix}{query}"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


States = tuple[list[tuple[int, float]], frozenset[int]]


def run_states(*, store: ReadingsStore, equipment: EquipmentInfo, now: datetime,
               max_gap: timedelta, around: timedelta) -> States | None:
    """The running-state readings `todo` checks against the batches (`state_changes` over the
    look-back), or None for a machine without a run rule or its sensor."""
    run_rule = RUN_RULES.get(equipment.kind.value)
    sensors = equipment.with_role(run_rule.role) if run_rule else []
    if not sensors:
        return None
    return state_changes(store, site=equipment.site, sensor=sensors[0].id,
                         start=now - LOOKBACK, end=now, around=around,
                         max_gap_ms=int(max_gap.total_seconds() * 1000))


def todo(*, db: Session, store: ReadingsStore, equipment: EquipmentInfo, now: datetime,
         max_gap: timedelta, around: timedelta, states: States | None = None) -> list[Item]:
    """Everything `equipment` lacks for its figures, oldest first; `states` are its
    `run_states` when already read (read here otherwise)."""
    eq = equipment
    kind = eq.kind.value
    rules = [rule for rule in FIELD_RULES if kind in rule.equipment_kinds]
    # Only the batches that lack a field, and only the columns the items show, are read: a
    # year of batches costs little.
    batches = list(db.execute(
        select(Batch.id, Batch.product, Batch.started_at, Batch.ended_at,
               *(getattr(Batch, rule.field) for rule in rules))
        .where(Batch.site == eq.site, Batch.equipment == eq.id, Batch.voided_at.is_(None),
               Batch.ended_at <= now)
        .where(or_(*(getattr(Batch, rule.field).is_(None) for rule in rules)))
        .order_by(Batch.started_at))) if rules else []
    items: list[Item] = []
    for rule in rules:
        items += [Item(rule=rule.id, start=b.started_at, end=b.ended_at, record_id=b.id,
                       label=b.product, link=_form(eq, "batches", f"{b.id}/modifier"))
                  for b in batches if getattr(b, rule.field) is None]
    materials = sorted({s.attributes.get("material", s.id)
                        for s in eq.with_role("material_consumed")})
    if materials:
        lots = list(db.scalars(live(MaterialLot).filter_by(site=eq.site, equipment=eq.id)))
        for material in materials:
            # No lot of this material at all: its footprint has no factor until one is entered.
            if not any(lot.material == material for lot in lots):
                first = db.scalar(select(func.min(Batch.started_at)).where(
                    Batch.site == eq.site, Batch.equipment == eq.id, Batch.voided_at.is_(None),
                    Batch.ended_at <= now)) or now
                items.append(Item(rule=MATERIAL_RULE, start=None, end=None, label=material,
                                  link=_form(eq, "material-lots", "nouveau", material=material,
                                             received_at=local_input(first, eq.timezone))))
    run_rule = RUN_RULES.get(kind)
    if states is None:
        states = run_states(store=store, equipment=eq, now=now, max_gap=max_gap,
                            around=around)
    if run_rule and states is not None:
        start = now - LOOKBACK
        max_gap_ms = int(max_gap.total_seconds() * 1000)
        samples, joined = states
        spans = running_spans(samples, start_ms=_ms(start), end_ms=_ms(now),
                              max_gap_ms=max_gap_ms, running=run_rule.running, joined=joined)
        all_batches = list(db.scalars(
            live(Batch).filter_by(site=eq.site, equipment=eq.id)
            .where(Batch.ended_at > start, Batch.started_at < now)))
        covered = [(_ms(b.started_at), _ms(b.ended_at)) for b in all_batches]
        for lo, hi in uncovered(spans, covered, min_ms=int(UNCOVERED_MIN.total_seconds() * 1000)):
            items.append(Item(rule=RUN_RULE, start=_at(lo), end=_at(hi), link=_form(
                eq, "batches", "nouveau", started_at=local_input(_at(lo), eq.timezone),
                ended_at=local_input(_at(hi), eq.timezone))))
    return sorted(items, key=lambda item: (item.start or now, item.rule))


def _registry(request: Request) -> SiteRegistry:
    registry: SiteRegistry = request.app.state.registry
    return registry


def _shown(items: list[Item], eq: EquipmentInfo, lang: Lang) -> list[dict[str, Any]]:
    """Each item's sentences, formatted here once: Jinja calling three translations and two
    dates per item costs more than the list's queries when a backlog holds hundreds."""
    zone = ZoneInfo(eq.timezone)
    out = []
    for item in items:
        parts = []
        if item.rule == RUN_RULE and item.start and item.end:
            hours = (item.end - item.start).total_seconds() / 3600
            parts.append(translate("missing.run", lang,
                                   hours=number(hours, digits=1, lang=lang)))
        elif item.record_id:
            parts.append(translate("missing.batch", lang, id=item.record_id)
                         + (f" · {item.label}" if item.label else ""))
        if item.start:
            parts.append(translate("missing.from_to", lang,
                                   start=moment(item.start, lang, zone),
                                   end=moment(item.end, lang, zone)))
        out.append({"item": item, "detail": " · ".join(parts),
                    "text": translate(f"missing.rule_{item.rule}", lang, label=item.label)})
    return out


@router.get("/a-completer", response_class=HTMLResponse)
def missing_page(request: Request, person: CurrentPerson, db: Db,
                 registry: Annotated[SiteRegistry, Depends(_registry)]) -> HTMLResponse:
    settings: ApiSettings = request.app.state.settings
    store: ReadingsStore = request.app.state.store
    now = datetime.now(UTC)
    lang = lang_of(request)
    max_gap = timedelta(seconds=settings.integral_max_gap_s)
    around = timedelta(seconds=settings.boundary_lookaround_s)
    shown = [eq for (site, _), eq in sorted(registry.equipment.items()) if person.may_see(site)]
    # The machines' state readings at once (InfluxDB answers them in parallel); the database
    # session stays in this thread.
    with ThreadPoolExecutor(max_workers=max(1, min(len(shown), 8))) as pool:
        states = list(pool.map(lambda eq: run_states(store=store, equipment=eq, now=now,
                                                     max_gap=max_gap, around=around), shown))
    todos = [(eq, _shown(todo(db=db, store=store, equipment=eq, now=now, max_gap=max_gap,
                              around=around, states=found), eq, lang))
             for eq, found in zip(shown, states, strict=True)]
    return page(request, "missing.html", nav="missing", todos=todos)
