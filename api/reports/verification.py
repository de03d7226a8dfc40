"""Verifying a published report: recompute it from today's data and say what moved, and why.

The report is computed again exactly as it was published (same site, same period request,
the code and files of today) with the same witnesses (`api.reports.manifest.capture`), and
the two manifests are compared:
- figures: every figure whose value differs (exactly: the JSON of a float is its exact
  value), appeared or disappeared is a difference;
- causes, each proven by the manifests and the database, never guessed:
  `readings` the same read of InfluxDB (series and window) answered other points (count and
  digest) than at publication (late readings, rewritten rollups): which series and window,
  points before and after;
  `record` a record read then has another version now, or was voided, purged, or is newly
  read: which, versions, and the audit trail's entries since (who, when, what changed);
  `data_file` a factor, GWP or reference file's content hash changed, or a user file was
  added or removed: old and new hash, and the entries (factor id@version, gas…) that differ;
  `settings` a computation setting changed; `code` the code version changed.
A cause is listed under a figure when it can reach it: readings and records of the figure's
equipment (or of no equipment: site-wide data), factor files whose changed factor ids the
equipment used (before or now) and other data files for every figure but energy (which uses
no factor), settings and code for all. `unexplained` lists moved figures no cause reaches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.records.calendars import KIND as CALENDARS
from api.records.kinds import KINDS
from api.records.tables import RecordAudit
from api.reports.manifest import capture
from api.reports.publications import Publication, Sources, period_of, site_timezone

_MISSING = "(absent)"


@dataclass(slots=True)
class Cause:
    """One proven change of an input, and the figures it can have moved."""

    kind: str  # readings | record | data_file | settings | code
    equipment: str | None  # None: any equipment
    detail: dict[str, Any]
    factor_ids: frozenset[str] | None = None  # factor files: the factor ids it changed
    reaches_energy: bool = True
    figures: list[str] = field(default_factory=list)

    def reaches(self, figure: str, factors_used: set[str]) -> bool:
        eq, _, name = figure.partition(".")
        if self.equipment is not None and self.equipment != eq:
            return False
        if not self.reaches_energy and (name.startswith(("energy.", "energy_buckets["))):
            return False
        if self.factor_ids is not None:
            return bool(self.factor_ids & factors_used)
        return True

    def out(self) -> dict[str, Any]:
        return {"kind": self.kind, "equipment": self.equipment, **self.detail,
                "figures": self.figures}


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


# --- readings ------------------------------------------------------------------------------

def _reading_causes(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[Cause]:
    """The same reads (same series, same window) answering other points now, grouped by
    series (measurement and sensor or equipment). A read made on one side only (a batch's
    span that moved or was voided) proves nothing about the data: the record's change does."""
    before = {r["key"]: r for r in old}
    after = {r["key"]: r for r in new}
    groups: dict[tuple[str, str | None, str | None], list[dict[str, Any]]] = {}
    for key in sorted(set(before) & set(after)):
        a, b = before[key], after[key]
        if a["sha256"] == b["sha256"]:
            continue
        groups.setdefault((a["measurement"], a["sensor"], a["equipment"]), []).append(
            {"read": a["label"], "points_before": a["points"], "points_after": b["points"]})
    return [Cause(kind="readings", equipment=equipment,
                  detail={"series": f"{measurement} {sensor or equipment or 'site'}",
                          "measurement": measurement, "sensor": sensor, "reads": reads})
            for (measurement, sensor, equipment), reads in groups.items()]


# --- records -------------------------------------------------------------------------------

def _audit(db: Session, kind: str, record_id: int, *, after_version: int | None,
           since: datetime) -> list[dict[str, Any]]:
    """The audit entries of a record after a version (or, for a record not read at
    publication, since the publication)."""
    rows = db.scalars(select(RecordAudit).filter_by(kind=kind, record_id=record_id)
                      .order_by(RecordAudit.at, RecordAudit.id))
    found = []
    for a in rows:
        version = (a.after or {}).get("version")
        later = (a.at >= since if after_version is None
                 else version is None or version > after_version)
        if not later:
            continue
        before, now = a.before or {}, a.after or {}
        changes = [[n, before.get(n), now.get(n)] for n in dict.fromkeys([*before, *now])
                   if before.get(n) != now.get(n) and n != "version"]
        found.append({"action": a.action, "actor": a.actor, "via": a.via,
                      "at": a.at.isoformat(), "reason": a.reason, "changes": changes})
    return found


def _calendar_causes(db: Session, old: list[dict[str, Any]], new: list[dict[str, Any]],
                     published_at: datetime) -> list[Cause]:
    """A line's shift calendar is one record whose every version is a row of its own: it
    moved when the version in force is not the one read at publication."""
    before = {r["equipment"]: r for r in old if r["kind"] == CALENDARS}
    after = {r["equipment"]: r for r in new if r["kind"] == CALENDARS}
    causes = []
    for equipment in sorted(set(before) | set(after)):
        a, b = before.get(equipment), after.get(equipment)
        if a is not None and b is not None and a["version"] == b["version"]:
            continue
        audit = [entry for row in db.scalars(
            select(RecordAudit).filter_by(kind=CALENDARS, equipment=equipment)
            .where(RecordAudit.at >= published_at).order_by(RecordAudit.at, RecordAudit.id))
            for entry in _audit(db, CALENDARS, row.record_id, after_version=None,
                                since=published_at)]
        causes.append(Cause(kind="record", equipment=equipment, detail={
            "record": f"{CALENDARS} {equipment}", "record_kind": CALENDARS, "id": None,
            "change": "edited" if a is not None else "added",
            "version_before": a["version"] if a else None,
            "version_after": b["version"] if b else None, "audit": audit}))
    return causes


def _record_causes(db: Session, old: list[dict[str, Any]], new: list[dict[str, Any]],
                   published_at: datetime) -> list[Cause]:
    causes = _calendar_causes(db, old, new, published_at)
    old = [r for r in old if r["kind"] != CALENDARS]
    new = [r for r in new if r["kind"] != CALENDARS]
    before = {(r["kind"], r["id"]): r for r in old}
    after = {(r["kind"], r["id"]): r for r in new}
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if a is not None and b is not None and a["version"] == b["version"]:
            continue
        kind, record_id = key
        row = db.get(KINDS[kind].table, record_id) if kind in KINDS else None
        if row is None:
            change, version_now = "purged", None
        elif a is None:
            change, version_now = "added", row.version
        elif row.version == a["version"]:
            continue  # unchanged, read no longer (another change moved it out): no cause
        else:
            change = "voided" if row.voided_at is not None else "edited"
            version_now = row.version
        one = a or b
        assert one is not None
        causes.append(Cause(kind="record", equipment=one["equipment"], detail={
            "record": f"{kind} {record_id}", "record_kind": kind, "id": record_id,
            "change": change, "version_before": a["version"] if a else None,
            "version_after": version_now,
            "audit": _audit(db, kind, record_id, after_version=a["version"] if a else None,
                            since=published_at)}))
    return causes


# --- data files, settings, code ------------------------------------------------------------

def _file_causes(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[Cause]:
    before = {f["file"]: f for f in old}
    after = {f["file"]: f for f in new}
    causes = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a is not None and b is not None and a["sha256"] == b["sha256"]:
            continue
        ea, eb = (a or {}).get("entries", {}), (b or {}).get("entries", {})
        changed = {"entries_added": sorted(set(eb) - set(ea)),
                   "entries_removed": sorted(set(ea) - set(eb)),
                   "entries_changed": sorted(k for k in set(ea) & set(eb) if ea[k] != eb[k])}
        touched = [k for names in changed.values() for k in names]
        role = (a or b or {}).get("role", "data")
        factor_ids: frozenset[str] | None = None
        if role == "factors" and touched and all(k.startswith("factors.") for k in touched):
            # Only factor entries changed: the figures reached are those using these ids.
            factor_ids = frozenset(k.removeprefix("factors.").split("@")[0] for k in touched)
        causes.append(Cause(kind="data_file", equipment=None, reaches_energy=False,
                            factor_ids=factor_ids, detail={
                                "file": name, "role": role,
                                "sha256_before": a["sha256"] if a else None,
                                "sha256_after": b["sha256"] if b else None,
                                **changed,
                                "factor_ids": sorted(factor_ids) if factor_ids else None}))
    return causes


def _other_causes(old: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    causes = []
    settings = {k: [old["settings"].get(k), v] for k, v in new["settings"].items()
                if old["settings"].get(k) != v}
    if settings:
        causes.append(Cause(kind="settings", equipment=None, detail={"changes": settings}))
    if old["code"] != new["code"]:
        causes.append(Cause(kind="code", equipment=None,
                            detail={"before": old["code"], "after": new["code"]}))
    return causes


# --- the verification ----------------------------------------------------------------------

def _uses(manifest: dict[str, Any]) -> dict[str, set[str]]:
    return {eq: {key.split("@")[0] for key in keys}
            for eq, keys in manifest.get("factors_used", {}).items()}


def verify(sources: Sources, row: Publication) -> dict[str, Any]:
    """Recompute a publication's report from today's data; its differences and causes."""
    old = row.manifest
    timezone = site_timezone(sources.registry, row.site)
    period = period_of(old["period"]["request"], timezone=timezone)
    now = capture(settings=sources.settings, registry=sources.registry, client=sources.client,
                  sessions=sources.sessions, site=row.site, period=period,
                  request=old["period"]["request"], generated_at=datetime.now(UTC))
    new = now.manifest
    with sources.sessions() as db:
        causes = (_reading_causes(old["series"], new["series"])
                  + _record_causes(db, old["records"], new["records"], row.published_at)
                  + _file_causes(old["files"], new["files"]) + _other_causes(old, new))
    used_before, used_now = _uses(old), _uses(new)
    differences, unexplained = [], []
    figures_before, figures_now = old["figures"], new["figures"]
    for name in sorted(set(figures_before) | set(figures_now)):
        a, b = figures_before.get(name, _MISSING), figures_now.get(name, _MISSING)
        if _text(a) == _text(b):
            continue
        eq = name.partition(".")[0]
        used = used_before.get(eq, set()) | used_now.get(eq, set())
        reached = [c for c in causes if c.reaches(name, used)]
        for cause in reached:
            cause.figures.append(name)
        if not reached:
            unexplained.append(name)
        differences.append({"figure": name, "old": a, "new": b,
                            "causes": [{k: v for k, v in c.out().items() if k != "figures"}
                                       for c in reached]})
    return {"publication": row.id, "verified_at": datetime.now(UTC).isoformat(),
            "manifest_sha256": row.manifest_sha256,
            "inputs_sha256_before": old["digests"]["inputs"],
            "inputs_sha256_now": new["digests"]["inputs"],
            "differences": differences,
            "causes": [c.out() for c in causes if c.figures],
            "unexplained": unexplained}
