"""Alert history, read from the alerting service's SQLite store.

The api does not import the alerting component (components only share `telemetry`): it opens
the same file read-only and queries the three tables whose columns docs/alerting.md declares a
contract (`alerts`, `notifications`, `acks`). The SQLite store, not the `alert_events`
annotations in InfluxDB, is the full record: every SMS with its delivery result, every reply
with who sent it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

# Columns the api reads: the contract with alerting/store.py (docs/alerting.md).
ALERT_COLUMNS = ("id", "rule_id", "subject", "site", "equipment", "name", "severity", "state",
                 "value", "unit", "source", "since_ms", "fired_ms", "resolved_ms", "acked_ms",
                 "acked_by", "contacts", "level")
NOTIFICATION_COLUMNS = ("id", "alert_id", "at_ms", "contact", "phone", "kind", "text",
                        "notifier", "result", "detail", "reference", "outcome")
ACK_COLUMNS = ("id", "alert_id", "at_ms", "phone", "contact", "text", "accepted", "reason")
MAX_LIMIT = 1000


class AlertStoreUnavailable(RuntimeError):
    """The alert store is not configured, missing, or not the documented schema."""


class NotificationOut(BaseModel):
    """One SMS (or other message) about an alert, and what became of it."""

    id: int
    at: datetime
    contact: str
    phone: str
    kind: str = Field(description="firing, repeat, escalation, resolved, ack")
    text: str
    notifier: str
    result: str = Field(description="sent (handed to a notifier), failed, rate_limited")
    detail: str
    reference: str = Field(description="the notifier's id of the message")
    outcome: str | None = Field(description="what the notifier reported later, if anything")


class AckOut(BaseModel):
    """A reply to an alert (e.g. "OK 42"), accepted or not, and who sent it."""

    id: int
    at: datetime
    phone: str
    contact: str | None
    text: str
    accepted: bool
    reason: str


class AlertOut(BaseModel):
    """One alert from pending to resolved, with everything sent about it and every reply."""

    id: int = Field(description="the number operators quote in 'OK 42'")
    rule_id: str
    subject: str = Field(description="sensor id, gateway id or Grafana fingerprint")
    site: str
    equipment: str
    name: str
    severity: str
    state: str = Field(description="pending, firing, resolved")
    value: float | None
    unit: str
    source: str = Field(description="rule, or grafana for alerts routed from Grafana")
    since: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    escalation_level: int = Field(description="index of the last contact told (-1: none)")
    notifications: list[NotificationOut]
    acks: list[AckOut]


def _time(ms: int | None) -> datetime | None:
    return None if ms is None else _at(ms)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class AlertHistoryReader:
    """Read-only queries on the alert store at `path`; one connection per call, so that a
    request never holds the file open and the alerting service's writes are never blocked."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        if self.path is None:
            raise AlertStoreUnavailable("alert history is not configured "
                                        "(DYNAMO_API_ALERT_DB: the alerting service's --db)")
        if not self.path.is_file():
            raise AlertStoreUnavailable(f"no alert store at {self.path}: is the alerting "
                                        "service running with this --db?")
        try:
            # mode=ro: the api can never alter the record, even by mistake.
            db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                 timeout=5)
        except sqlite3.Error as exc:
            raise AlertStoreUnavailable(f"alert store {self.path}: {exc}") from exc
        db.row_factory = sqlite3.Row
        return db

    def history(self, *, site: str, equipment: str | None = None,
                since_ms: int | None = None, limit: int = 100) -> list[AlertOut]:
        """A site's alerts, newest first, with their notifications and replies. `since_ms`
        keeps alerts whose last change (resolution, firing, or start) is at or after it —
        the same selection as the alerting store's own `history()`."""
        clauses: list[str] = ["site = ?"]
        params: list[str | int] = [site]
        if equipment is not None:
            clauses.append("equipment = ?")
            params.append(equipment)
        if since_ms is not None:
            clauses.append("COALESCE(resolved_ms, fired_ms, since_ms) >= ?")
            params.append(since_ms)  # an int: SQLite orders any text after any number
        db = self._connect()
        try:
            self._check_schema(db)
            alerts = db.execute(
                f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts WHERE {' AND '.join(clauses)}"
                " ORDER BY id DESC LIMIT ?", (*params, max(1, min(limit, MAX_LIMIT)))).fetchall()
            ids = [int(row["id"]) for row in alerts]
            notifications = self._children(db, "notifications", NOTIFICATION_COLUMNS, ids)
            acks = self._children(db, "acks", ACK_COLUMNS, ids)
        except sqlite3.Error as exc:
            raise AlertStoreUnavailable(f"alert store {self.path}: {exc}") from exc
        finally:
            db.close()
        return [_alert(row, notifications.get(int(row["id"]), []), acks.get(int(row["id"]), []))
                for row in alerts]

    def _check_schema(self, db: sqlite3.Connection) -> None:
        for table, columns in (("alerts", ALERT_COLUMNS), ("notifications", NOTIFICATION_COLUMNS),
                               ("acks", ACK_COLUMNS)):
            found = {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}
            missing = [c for c in columns if c not in found]
            if missing:
                raise AlertStoreUnavailable(
                    f"alert store {self.path}: table {table} lacks {', '.join(missing)}; the "
                    "alerting service and the api disagree on its schema (docs/alerting.md)")

    @staticmethod
    def _children(db: sqlite3.Connection, table: str, columns: Sequence[str],
                  ids: list[int]) -> dict[int, list[sqlite3.Row]]:
        out: dict[int, list[sqlite3.Row]] = {}
        if not ids:
            return out
        marks = ", ".join("?" for _ in ids)
        # `table` and `columns` are our own constants; the ids are bound parameters.
        for row in db.execute(f"SELECT {', '.join(columns)} FROM {table}"
                              f" WHERE alert_id IN ({marks}) ORDER BY id", ids):
            out.setdefault(int(row["alert_id"]), []).append(row)
        return out


def _alert(row: sqlite3.Row, notifications: list[sqlite3.Row],
           acks: list[sqlite3.Row]) -> AlertOut:
    data: dict[str, Any] = dict(row)
    return AlertOut(
        id=data["id"], rule_id=data["rule_id"], subject=data["subject"], site=data["site"],
        equipment=data["equipment"], name=data["name"], severity=data["severity"],
        state=data["state"], value=data["value"], unit=data["unit"], source=data["source"],
        since=_at(data["since_ms"]), fired_at=_time(data["fired_ms"]),
        resolved_at=_time(data["resolved_ms"]), acknowledged_at=_time(data["acked_ms"]),
        acknowledged_by=data["acked_by"], escalation_level=data["level"],
        notifications=[NotificationOut(
            id=n["id"], at=_at(n["at_ms"]), contact=n["contact"], phone=n["phone"],
            kind=n["kind"], text=n["text"], notifier=n["notifier"], result=n["result"],
            detail=n["detail"], reference=n["reference"], outcome=n["outcome"])
            for n in notifications],
        acks=[AckOut(id=a["id"], at=_at(a["at_ms"]), phone=a["phone"], contact=a["contact"],
                     text=a["text"], accepted=bool(a["accepted"]), reason=a["reason"])
              for a in acks])
