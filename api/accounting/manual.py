"""Activity data entered by hand (`manual_activities` records) as the activity of a period.

- A fuel delivery dated inside the period counts whole: what is delivered is taken as burnt in
  the period of its delivery (no tank level is known). The evidence says so.
- Consecutive index readings of one meter give the consumption between them; the part of it
  that falls in the period is shared pro rata of time (a reading on 1 March and one on 31
  March: a period of 10 days of that month gets 10/30 of the difference). Time of the period not
  between two readings is not counted, and said.
Voided records are never read. Each item names its records, and its method `manual_record`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from api.accounting.factors import FactorTable, UnknownFactor
from api.accounting.ghg import MANUAL_RECORD_PCT, activity_emissions
from api.periods import Period
from api.records.live import live
from api.records.tables import ManualActivity
from api.schemas import EmissionLine
from api.sites import EquipmentInfo

METHOD = "manual_record"


@dataclass(frozen=True, slots=True)
class ManualItem:
    """One carrier's activity of the period from hand-entered records."""

    carrier: str
    quantity: float
    unit: str
    source: str  # fuel_delivery | meter_reading
    record_ids: tuple[int, ...]
    evidence: str  # how the quantity was reached, naming the method and the records
    method: str = METHOD


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in sorted(set(ids)))


def manual_activity(db: Session, *, equipment: EquipmentInfo, period: Period
                    ) -> tuple[list[ManualItem], list[str]]:
    """The manual activity of `equipment` over `period`, and notes on what it leaves out."""
    rows = list(db.scalars(live(ManualActivity).filter_by(
        site=equipment.site, equipment=equipment.id).order_by(ManualActivity.id)))
    items: list[ManualItem] = []
    notes: list[str] = []
    deliveries: dict[tuple[str, str], list[ManualActivity]] = defaultdict(list)
    meters: dict[tuple[str, str, str], list[ManualActivity]] = defaultdict(list)
    for row in rows:
        if (row.kind == "fuel_delivery" and row.delivered_at is not None
                and period.start <= row.delivered_at < period.end):
            deliveries[(row.carrier, row.unit)].append(row)
        elif row.kind == "meter_reading" and row.read_at is not None and row.meter:
            meters[(row.carrier, row.unit, row.meter)].append(row)
    for (carrier, unit), found in sorted(deliveries.items()):
        ids = [r.id for r in found]
        items.append(ManualItem(
            carrier=carrier, unit=unit, source="fuel_delivery", record_ids=tuple(ids),
            quantity=sum(r.quantity or 0.0 for r in found),
            evidence=f"{METHOD}: fuel deliveries {_ids(ids)} (delivery notes "
                     f"{', '.join(r.delivery_note or '?' for r in found)}) counted whole: "
                     "delivered = burnt in the period of delivery"))
    by_carrier: dict[tuple[str, str], tuple[float, list[int], list[str]]] = {}
    for (carrier, unit, meter), readings in sorted(meters.items()):
        framed = _between_readings(readings, period=period, meter=meter, notes=notes)
        if framed is None:
            continue
        quantity, ids = framed
        total, all_ids, names = by_carrier.get((carrier, unit), (0.0, [], []))
        by_carrier[(carrier, unit)] = (total + quantity, all_ids + ids, [*names, meter])
    for (carrier, unit), (quantity, ids, names) in sorted(by_carrier.items()):
        items.append(ManualItem(
            carrier=carrier, unit=unit, source="meter_reading", record_ids=tuple(sorted(ids)),
            quantity=quantity,
            evidence=f"{METHOD}: index readings {_ids(ids)} of meter(s) {', '.join(names)}; "
                     "the consumption between two readings is shared pro rata of time"))
    return items, notes


def _between_readings(readings: list[ManualActivity], *, period: Period, meter: str,
                      notes: list[str]) -> tuple[float, list[int]] | None:
    """The consumption of one meter attributed to the period, and the readings it rests
    on; None when no two readings frame any of the period."""
    ordered = sorted(readings, key=lambda r: (r.read_at, r.id))
    quantity = 0.0
    covered_s = 0.0
    ids: list[int] = []
    for a, b in pairwise(ordered):
        assert a.read_at is not None and b.read_at is not None  # filtered by the caller
        span_s = (b.read_at - a.read_at).total_seconds()
        overlap_s = (min(b.read_at, period.end) - max(a.read_at, period.start)).total_seconds()
        if span_s <= 0 or overlap_s <= 0:
            continue
        delta = (b.index_value or 0.0) - (a.index_value or 0.0)
        if delta < 0:
            notes.append(f"meter {meter}: the index went down between readings {a.id} and "
                         f"{b.id} (meter replaced or reset?): that stretch is not counted")
            continue
        quantity += delta * overlap_s / span_s
        covered_s += overlap_s
        ids += [a.id, b.id]
    if not ids:
        return None
    whole_s = (period.end - period.start).total_seconds()
    if covered_s < whole_s:
        notes.append(f"meter {meter}: readings frame {covered_s / whole_s:.0%} of the period; "
                     "the rest is not counted")
    return quantity, ids


_SOURCE_NAMES = {"fuel_delivery": "delivery", "meter_reading": "manual meter reading"}


def manual_emission_lines(db: Session, factors: FactorTable, *, equipment: EquipmentInfo,
                          period: Period, timezone: str, notes: list[str]
                          ) -> list[EmissionLine]:
    """The emission lines of the period's manual activity — fuels burnt (scope 1, and their
    upstream), electricity by a manual index (scope 2) — with the carriers' default factors
    on the period's first day; a carrier without a factor is left out and said in `notes`."""
    items, found_notes = manual_activity(db, equipment=equipment, period=period)
    notes.extend(found_notes)
    on: date = period.start.astimezone(ZoneInfo(timezone)).date()
    lines: list[EmissionLine] = []
    for item in items:
        activity = (f"{item.carrier} {_SOURCE_NAMES[item.source]} (manual record "
                    f"{_ids(list(item.record_ids))})")
        try:
            found = activity_emissions(factors, carrier=item.carrier, activity=activity,
                                       quantity=item.quantity, unit=item.unit, on=on,
                                       method=item.method,
                                       activity_uncertainty_pct=MANUAL_RECORD_PCT)
        except UnknownFactor as exc:
            notes.append(f"{activity}: {exc}; not counted")
            continue
        if not found:
            notes.append(f"{activity}: no default emission factor for {item.carrier!r}; "
                         "not counted")
            continue
        lines += found
        notes.append(item.evidence)
    return lines
