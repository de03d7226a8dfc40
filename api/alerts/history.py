"""Alert history, read from the alerting service's SQLite store.

The api does not import the alerting component (components only share `telemetry`): it opens
the same file read-only and queries the three tables whose columns docs/alerting.md declares a
contract (`alerts`, `notifications`, `acks`, `silences`, `commands`). The SQLite store, not the
`alert_events` annotations in InfluxDB, is the full record: every SMS with its delivery result,
every acknowledgement with who sent it and how (SMS reply or console), every silence, and what
became of each command the api sent (api/alerts/commands.py).
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
# Added later (alerting/store.py `_ADDED_COLUMNS`): a store the alerting service has not opened
# since lacks them; read as what every older row was.
OPTIONAL_COLUMNS = {"alerts": {"acked_via": "NULL"}, "acks": {"via": "'sms'"},
                    "silences": {"via": "'cli'"}}
SILENCE_COLUMNS = ("id", "site", "equipment", "start_ms", "until_ms", "reason", "created_by")
COMMAND_COLUMNS = ("command_id", "site", "at_ms", "action", "alert_id", "equipment", "requested_by",
                   "via", "result", "reason")
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
    via: str = Field(description="sms (a reply to the modem), console or api (a command)")


class SilenceOut(BaseModel):
    """A maintenance silence: no SMS about this equipment until `until` (alerts still recorded)."""

    id: int
    site: str
    equipment: str
    start: datetime
    until: datetime
    reason: str
    created_by: str = Field(description="a contact id, `user:<login>` or `token:<name>`")
    via: str = Field(description="cli (`dynamo alerts silence`), console or api")


class CommandStatus(BaseModel):
    """What the alerting service did with a command the api sent, once it has received it."""

    command_id: str
    site: str
    at: datetime
    action: str = Field(description="ack or silence")
    alert_id: int | None
    equipment: str | None
    requested_by: str
    via: str
    result: str = Field(description="applied, refused (e.g. the alert had resolved) or rejected")
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
    acknowledged_via: str | None = Field(description="sms, console or api; null: not acknowledged")
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
                since_ms: int | None = None, limit: int = 100,
                open_only: bool = False, alert_id: int | None = None) -> list[AlertOut]:
        """A site's alerts, newest first, with their notifications and replies. `since_ms`
        keeps alerts whose last change (resolution, firing, or start) is at or after it —
        the same selection as the alerting store's own `history()`; `open_only` keeps the
        pending and firing ones, however old."""
        clauses: list[str] = ["site = ?"]
        params: list[str | int] = [site]
        if equipment is not None:
            clauses.append("equipment = ?")
            params.append(equipment)
        if since_ms is not None:
            clauses.append("COALESCE(resolved_ms, fired_ms, since_ms) >= ?")
            params.append(since_ms)  # an int: SQLite orders any text after any number
        if open_only:
            clauses.append("state != 'resolved'")
        if alert_id is not None:
            clauses.append("id = ?")
            params.append(alert_id)
        db = self._connect()
        try:
            found = self._check_schema(db)
            alerts = db.execute(
                f"SELECT {_select('alerts', ALERT_COLUMNS, found)} FROM alerts"
                f" WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT ?",
                (*params, max(1, min(limit, MAX_LIMIT)))).fetchall()
            ids = [int(row["id"]) for row in alerts]
            notifications = self._children(
                db, "notifications", _select("notifications", NOTIFICATION_COLUMNS, found), ids)
            acks = self._children(db, "acks", _select("acks", ACK_COLUMNS, found), ids)
        except sqlite3.Error as exc:
            raise AlertStoreUnavailable(f"alert store {self.path}: {exc}") from exc
        finally:
            db.close()
        return [_alert(row, notifications.get(int(row["id"]), []), acks.get(int(row["id"]), []))
                for row in alerts]

    def silences(self, *, site: str, at_ms: int) -> list[SilenceOut]:
        """The site's silences still running at `at_ms`, ending first first."""
        db = self._connect()
        try:
            found = self._check_schema(db)
            rows = db.execute(
                f"SELECT {_select('silences', SILENCE_COLUMNS, found)} FROM silences"
                " WHERE site = ? AND start_ms <= ? AND until_ms > ? ORDER BY until_ms, id",
                (site, at_ms, at_ms)).fetchall()
        except sqlite3.Error as exc:
            raise AlertStoreUnavailable(f"alert store {self.path}: {exc}") from exc
        finally:
            db.close()
        return [SilenceOut(id=r["id"], site=r["site"], equipment=r["equipment"],
                           start=_at(r["start_ms"]), until=_at(r["until_ms"]), reason=r["reason"],
                           created_by=r["created_by"], via=r["via"]) for r in rows]

    def command(self, *, site: str, command_id: str) -> CommandStatus | None:
        """What the alerting service did with a command; None while it has not received it
        (or from a store the service has not opened since commands exist)."""
        db = self._connect()
        try:
            if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                              "AND name = 'commands'").fetchall():
                return None
            rows = db.execute(f"SELECT {', '.join(COMMAND_COLUMNS)} FROM commands"
                              " WHERE command_id = ? AND site = ?", (command_id, site)).fetchall()
        except sqlite3.Error as exc:
            raise AlertStoreUnavailable(f"alert store {self.path}: {exc}") from exc
        finally:
            db.close()
        if not rows:
            return None
        row = dict(rows[0])
        at = _at(row.pop("at_ms"))
        return CommandStatus(at=at, **row)

    def _check_schema(self, db: sqlite3.Connection) -> dict[str, set[str]]:
        """The columns of each table read, once the contract's are known to be there."""
        found: dict[str, set[str]] = {}
        for table, columns in (("alerts", ALERT_COLUMNS), ("notifications", NOTIFICATION_COLUMNS),
                               ("acks", ACK_COLUMNS), ("silences", SILENCE_COLUMNS)):
            found[table] = {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}
            missing = [c for c in columns if c not in found[table]]
            if missing:
                raise AlertStoreUnavailable(
                    f"alert store {self.path}: table {table} lacks {', '.join(missing)}; the "
                    "alerting service and the api disagree on its schema (docs/alerting.md)")
        return found

    @staticmethod
    def _children(db: sqlite3.Connection, table: str, columns: str,
                  ids: list[int]) -> dict[int, list[sqlite3.Row]]:
        out: dict[int, list[sqlite3.Row]] = {}
        if not ids:
            return out
        marks = ", ".join("?" for _ in ids)
        # `table` and `columns` are our own constants; the ids are bound parameters.
        for row in db.execute(f"SELECT {columns} FROM {table}"
                              f" WHERE alert_id IN ({marks}) ORDER BY id", ids):
            out.setdefault(int(row["alert_id"]), []).append(row)
        return out


def _select(table: str, columns: Sequence[str], found: dict[str, set[str]]) -> str:
    """The contract's columns of `table` and its optional ones, a default for those missing."""
    optional = [column if column in found[table] else f"{default} AS {column}"
                for column, default in OPTIONAL_COLUMNS.get(table, {}).items()]
    return ", ".join([*columns, *optional])


def _alert(row: sqlite3.Row, notifications: list[sqlite3.Row],
           acks: list[sqlite3.Row]) -> AlertOut:
    data: dict[str, Any] = dict(row)
    return AlertOut(
        id=data["id"], rule_id=data["rule_id"], subject=data["subject"], site=data["site"],
        equipment=data["equipment"], name=data["name"], severity=data["severity"],
        state=data["state"], value=data["value"], unit=data["unit"], source=data["source"],
        since=_at(data["since_ms"]), fired_at=_time(data["fired_ms"]),
        resolved_at=_time(data["resolved_ms"]), acknowledged_at=_time(data["acked_ms"]),
        acknowledged_by=data["acked_by"], acknowledged_via=data["acked_via"],
        escalation_level=data["level"],
        notifications=[NotificationOut(
            id=n["id"], at=_at(n["at_ms"]), contact=n["contact"], phone=n["phone"],
            kind=n["kind"], text=n["text"], notifier=n["notifier"], result=n["result"],
            detail=n["detail"], reference=n["reference"], outcome=n["outcome"])
            for n in notifications],
        acks=[AckOut(id=a["id"], at=_at(a["at_ms"]), phone=a["phone"], contact=a["contact"],
                     text=a["text"], accepted=bool(a["accepted"]), reason=a["reason"],
                     via=a["via"])
              for a in acks])
