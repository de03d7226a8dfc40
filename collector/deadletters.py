"""Dead letters: messages the collector could not accept, kept with the reason, never lost."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A refused MQTT message (its topic) or InfluxDB lines (topic `influxdb-write`)."""

    id: int
    received_ms: int
    topic: str
    reason: str
    payload: bytes


class DeadLetterStore:
    """An SQLite table of refused messages; safe to use from several threads."""

    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " received_ms INTEGER NOT NULL, topic TEXT NOT NULL, reason TEXT NOT NULL,"
            " payload BLOB NOT NULL)")

    def add(self, *, topic: str, reason: str, payload: bytes) -> None:
        """Store a refused message durably (SQLite commits before this returns)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO dead_letters (received_ms, topic, reason, payload) VALUES (?,?,?,?)",
                (int(time.time() * 1000), topic, reason, payload))

    def entries(self, *, limit: int = 100, ids: list[int] | None = None) -> list[DeadLetter]:
        """The oldest `limit` letters, or those of `ids` (unknown ids are skipped)."""
        query = "SELECT id, received_ms, topic, reason, payload FROM dead_letters"
        with self._lock:
            if ids is None:
                rows = self._db.execute(f"{query} ORDER BY id LIMIT ?", (limit,)).fetchall()
            else:
                rows = [row for i in ids for row in self._db.execute(
                    f"{query} WHERE id = ?", (i,)).fetchall()]
        return [DeadLetter(*row) for row in rows]

    def remove(self, ids: list[int]) -> None:
        """Forget these letters (after a successful replay)."""
        with self._lock:
            self._db.executemany("DELETE FROM dead_letters WHERE id = ?", [(i,) for i in ids])

    def count(self) -> int:
        """How many letters are stored."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
