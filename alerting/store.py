"""The alert store (SQLite): alerts, every notification with its delivery result, acknowledgements
and maintenance silences. It is what lets a restart neither forget nor repeat an alert, and what
the api's alert history reads (`history`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerting.alert import Alert, State

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id TEXT NOT NULL, subject TEXT NOT NULL, site TEXT NOT NULL, equipment TEXT NOT NULL,
    name TEXT NOT NULL, severity TEXT NOT NULL, contacts TEXT NOT NULL,
    repeat_every_min REAL NOT NULL, escalate_after_min REAL NOT NULL,
    since_ms INTEGER NOT NULL, state TEXT NOT NULL, value REAL, unit TEXT NOT NULL,
    message TEXT, source TEXT NOT NULL, fired_ms INTEGER, resolved_ms INTEGER,
    notified_ms INTEGER, last_sent_ms INTEGER, level INTEGER NOT NULL,
    acked_ms INTEGER, acked_by TEXT, extra TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts (state);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER, at_ms INTEGER NOT NULL, contact TEXT NOT NULL, phone TEXT NOT NULL,
    kind TEXT NOT NULL, text TEXT NOT NULL, notifier TEXT NOT NULL, result TEXT NOT NULL,
    detail TEXT NOT NULL, reference TEXT NOT NULL DEFAULT '', outcome TEXT
);
CREATE INDEX IF NOT EXISTS notifications_phone ON notifications (phone, at_ms);
CREATE TABLE IF NOT EXISTS acks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER, at_ms INTEGER NOT NULL, phone TEXT NOT NULL, contact TEXT,
    text TEXT NOT NULL, accepted INTEGER NOT NULL, reason TEXT NOT NULL
);
-- Events an edge process publishes to the central broker, kept until the broker confirms them.
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL, payload BLOB NOT NULL, at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site TEXT NOT NULL, equipment TEXT NOT NULL, start_ms INTEGER NOT NULL,
    until_ms INTEGER NOT NULL, reason TEXT NOT NULL, created_by TEXT NOT NULL
);
-- Acknowledgements and silences asked for through the broker (the api's console), one row per
-- command id: what makes a redelivered command act once, and where a refused one is set aside.
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    command_id TEXT UNIQUE, site TEXT NOT NULL, at_ms INTEGER NOT NULL, action TEXT NOT NULL,
    alert_id INTEGER,
    equipment TEXT, requested_by TEXT NOT NULL, via TEXT NOT NULL, result TEXT NOT NULL,
    reason TEXT NOT NULL, payload TEXT NOT NULL
);
"""
# Columns added after a store's first release: ALTER TABLE on open, so that a store created
# before them keeps its rows (CREATE TABLE IF NOT EXISTS never changes an existing table).
_ADDED_COLUMNS = (
    ("alerts", "acked_via", "TEXT"),  # sms, console, api; NULL: not acknowledged
    ("acks", "via", "TEXT NOT NULL DEFAULT 'sms'"),  # every ack before it was an SMS reply
    ("silences", "via", "TEXT NOT NULL DEFAULT 'cli'"),  # `dynamo alerts silence`
)
_ALERT_COLUMNS = ("rule_id", "subject", "site", "equipment", "name", "severity", "contacts",
                  "repeat_every_min", "escalate_after_min", "since_ms", "state", "value", "unit",
                  "message", "source", "fired_ms", "resolved_ms", "notified_ms", "last_sent_ms",
                  "level", "acked_ms", "acked_by", "acked_via", "extra")


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    id: int
    alert_id: int | None
    at_ms: int
    contact: str
    phone: str
    kind: str  # firing, repeat, escalation, resolved, ack, summary
    text: str
    notifier: str
    result: str  # sent (handed to a notifier), failed, rate_limited
    detail: str
    reference: str  # the notifier's id of the message (gammu: the outbox file)
    outcome: str | None  # what the notifier reported later (gammu: sent by the modem, error)


@dataclass(frozen=True, slots=True)
class AckRecord:
    id: int
    alert_id: int | None
    at_ms: int
    phone: str
    contact: str | None
    text: str
    accepted: bool
    reason: str
    via: str  # sms (a reply to the modem), console or api (a command)


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    site: str
    equipment: str
    start_ms: int
    until_ms: int
    reason: str
    created_by: str
    via: str  # cli, console or api


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A command received on the broker: applied, refused by the engine, or rejected."""

    id: int
    command_id: str | None  # None: the payload had no readable id
    site: str  # the site of the topic it came on
    at_ms: int
    action: str
    alert_id: int | None
    equipment: str | None
    requested_by: str
    via: str
    result: str  # applied, refused (the engine said no: not firing…), rejected (malformed)
    reason: str
    payload: str


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: int
    topic: str
    payload: bytes
    at_ms: int


@dataclass(frozen=True, slots=True)
class AlertHistory:
    """One alert with everything sent about it and every reply: a row of the api's history."""

    alert: Alert
    notifications: tuple[NotificationRecord, ...]
    acks: tuple[AckRecord, ...]


class AlertStore:
    """SQLite file shared by the engine's threads; every write is its own transaction."""

    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            for table, column, definition in _ADDED_COLUMNS:
                found = {row["name"] for row in self._db.execute(f"PRAGMA table_info({table})")}
                if column not in found:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def counts(self) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        """For /metrics: notifications by (notifier, result), open alerts by (state, severity)."""
        sent = self._run("SELECT notifier, result, count(*) AS n FROM notifications"
                         " GROUP BY notifier, result")
        open_ = self._run("SELECT state, severity, count(*) AS n FROM alerts"
                          " WHERE state != 'resolved' GROUP BY state, severity")
        return ({(r["notifier"], r["result"]): int(r["n"]) for r in sent},
                {(r["state"], r["severity"]): int(r["n"]) for r in open_})

    # -- alerts -------------------------------------------------------------------------------

    def save(self, alert: Alert) -> Alert:
        """Insert (id 0) or update an alert; returns it with its id set."""
        values = (alert.rule_id, alert.subject, alert.site, alert.equipment, alert.name,
                  alert.severity, json.dumps(list(alert.contacts)), alert.repeat_every_min,
                  alert.escalate_after_min, alert.since_ms, str(alert.state), alert.value,
                  alert.unit, alert.message, alert.source, alert.fired_ms, alert.resolved_ms,
                  alert.notified_ms, alert.last_sent_ms, alert.level, alert.acked_ms,
                  alert.acked_by, alert.acked_via, json.dumps(alert.extra))
        with self._lock:
            if alert.id:
                sets = ", ".join(f"{c} = ?" for c in _ALERT_COLUMNS)
                self._db.execute(f"UPDATE alerts SET {sets} WHERE id = ?", (*values, alert.id))
            else:
                marks = ", ".join("?" for _ in _ALERT_COLUMNS)
                cursor = self._db.execute(
                    f"INSERT INTO alerts ({', '.join(_ALERT_COLUMNS)}) VALUES ({marks})", values)
                alert.id = int(cursor.lastrowid or 0)
        return alert

    def open_alerts(self) -> list[Alert]:
        """Pending and firing alerts, oldest first."""
        rows = self._run("SELECT * FROM alerts WHERE state != ? ORDER BY id", (State.RESOLVED,))
        return [_alert(row) for row in rows]

    def get(self, alert_id: int) -> Alert | None:
        rows = self._run("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        return _alert(rows[0]) if rows else None

    def delete_pending(self, alert: Alert) -> None:
        """Forget a pending alert whose condition went away: it was never an alert."""
        self._run("DELETE FROM alerts WHERE id = ? AND state = ?", (alert.id, State.PENDING))

    # -- notifications and replies -------------------------------------------------------------

    def record_notification(self, *, alert_id: int | None, at_ms: int, contact: str, phone: str,
                            kind: str, text: str, notifier: str, result: str,
                            detail: str, reference: str = "") -> int:
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO notifications (alert_id, at_ms, contact, phone, kind, text, "
                "notifier, result, detail, reference) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (alert_id, at_ms, contact, phone, kind, text, notifier, result, detail,
                 reference))
            return int(cursor.lastrowid or 0)

    def awaiting_outcome(self, *, notifier: str, limit: int = 100) -> list[NotificationRecord]:
        """Messages a notifier took whose final outcome it has not reported yet."""
        rows = self._run("SELECT * FROM notifications WHERE notifier = ? AND result = 'sent' "
                         "AND outcome IS NULL AND reference != '' ORDER BY id LIMIT ?",
                         (notifier, limit))
        return [NotificationRecord(**dict(row)) for row in rows]

    def set_outcome(self, *, notification_id: int, outcome: str) -> None:
        self._run("UPDATE notifications SET outcome = ? WHERE id = ?", (outcome, notification_id))

    def notifications(self, *, alert_id: int | None = None,
                      phone: str | None = None) -> list[NotificationRecord]:
        where, params = _filters(alert_id=alert_id, phone=phone)
        rows = self._run(f"SELECT * FROM notifications{where} ORDER BY id", params)
        return [NotificationRecord(**dict(row)) for row in rows]

    def count_attempts(self, *, phone: str, since_ms: int) -> int:
        """SMS actually handed to a notifier for this number since a time (the rate limit)."""
        rows = self._run("SELECT COUNT(*) FROM notifications WHERE phone = ? AND at_ms >= ? "
                         "AND result != 'rate_limited'", (phone, since_ms))
        return int(rows[0][0])

    def suppressed_since_summary(self, *, phone: str) -> int:
        """Rate-limited SMS for this number since its last summary."""
        rows = self._run(
            "SELECT COUNT(*) FROM notifications WHERE phone = ? AND result = 'rate_limited' AND "
            "id > COALESCE((SELECT MAX(id) FROM notifications WHERE phone = ? "
            "AND kind = 'summary'), 0)", (phone, phone))
        return int(rows[0][0])

    def phones_with_suppressed(self) -> list[str]:
        rows = self._run("SELECT DISTINCT phone FROM notifications WHERE result = 'rate_limited'")
        return [str(row[0]) for row in rows]

    def record_ack(self, *, alert_id: int | None, at_ms: int, phone: str, contact: str | None,
                   text: str, accepted: bool, reason: str, via: str = "sms") -> None:
        self._run("INSERT INTO acks (alert_id, at_ms, phone, contact, text, accepted, reason, "
                  "via) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  (alert_id, at_ms, phone, contact, text, int(accepted), reason, via))

    def acks(self, *, alert_id: int | None = None) -> list[AckRecord]:
        where, params = _filters(alert_id=alert_id)
        rows = self._run(f"SELECT * FROM acks{where} ORDER BY id", params)
        return [AckRecord(**{**dict(row), "accepted": bool(row["accepted"])}) for row in rows]

    # -- silences ------------------------------------------------------------------------------

    def add_silence(self, *, site: str, equipment: str, start_ms: int, until_ms: int,
                    reason: str, created_by: str, via: str = "cli") -> int:
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO silences (site, equipment, start_ms, until_ms, reason, created_by, "
                "via) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (site, equipment, start_ms, until_ms, reason, created_by, via))
            return int(cursor.lastrowid or 0)

    def silence_at(self, *, site: str, equipment: str, at_ms: int) -> Silence | None:
        rows = self._run("SELECT * FROM silences WHERE site = ? AND equipment = ? AND "
                         "start_ms <= ? AND until_ms > ? ORDER BY until_ms DESC LIMIT 1",
                         (site, equipment, at_ms, at_ms))
        return Silence(**dict(rows[0])) if rows else None

    # -- commands from the broker -------------------------------------------------------------

    def command(self, command_id: str) -> CommandRecord | None:
        """What became of a command id, if it was received."""
        rows = self._run("SELECT * FROM commands WHERE command_id = ?", (command_id,))
        return CommandRecord(**dict(rows[0])) if rows else None

    def record_command(self, *, command_id: str | None, site: str, at_ms: int, action: str,
                       alert_id: int | None, equipment: str | None, requested_by: str,
                       via: str, result: str, reason: str, payload: str) -> None:
        self._run("INSERT INTO commands (command_id, site, at_ms, action, alert_id, equipment, "
                  "requested_by, via, result, reason, payload) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  (command_id, site, at_ms, action, alert_id, equipment, requested_by, via,
                   result, reason, payload))

    def commands(self, *, limit: int = 100) -> list[CommandRecord]:
        """The latest commands received, newest first."""
        rows = self._run("SELECT * FROM commands ORDER BY id DESC LIMIT ?", (limit,))
        return [CommandRecord(**dict(row)) for row in rows]

    # -- the edge's outbox ---------------------------------------------------------------------

    def outbox_add(self, *, topic: str, payload: bytes, at_ms: int) -> int:
        """Keep a message to publish; its id, for `outbox_remove` once the broker has it."""
        with self._lock:
            cursor = self._db.execute("INSERT INTO outbox (topic, payload, at_ms) VALUES (?, ?, ?)",
                                      (topic, payload, at_ms))
            return int(cursor.lastrowid or 0)

    def outbox(self) -> list[OutboxEntry]:
        """The messages not confirmed yet, oldest first."""
        return [OutboxEntry(id=row["id"], topic=row["topic"], payload=bytes(row["payload"]),
                            at_ms=row["at_ms"])
                for row in self._run("SELECT * FROM outbox ORDER BY id")]

    def outbox_remove(self, entry_id: int) -> None:
        self._run("DELETE FROM outbox WHERE id = ?", (entry_id,))

    # -- the api's read interface --------------------------------------------------------------

    def history(self, *, site: str | None = None, equipment: str | None = None,
                since_ms: int | None = None, limit: int = 100) -> list[AlertHistory]:
        """Alerts (newest first) with their notifications and acknowledgements."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("site", site), ("equipment", equipment)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since_ms is not None:
            clauses.append("COALESCE(resolved_ms, fired_ms, since_ms) >= ?")
            params.append(since_ms)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._run(f"SELECT * FROM alerts{where} ORDER BY id DESC LIMIT ?",
                         (*params, max(1, min(limit, 1000))))
        return [AlertHistory(alert=_alert(row),
                             notifications=tuple(self.notifications(alert_id=row["id"])),
                             acks=tuple(self.acks(alert_id=row["id"]))) for row in rows]


def _filters(**values: Any) -> tuple[str, tuple[Any, ...]]:
    pairs = [(k, v) for k, v in values.items() if v is not None]
    if not pairs:
        return "", ()
    return " WHERE " + " AND ".join(f"{k} = ?" for k, _ in pairs), tuple(v for _, v in pairs)


def _alert(row: sqlite3.Row) -> Alert:
    data = dict(row)
    data["contacts"] = tuple(json.loads(data["contacts"]))
    data["extra"] = json.loads(data["extra"])
    data["state"] = State(data["state"])
    return Alert(**data)
