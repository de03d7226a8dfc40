"""Dead letters: messages the collector could not accept, kept with the reason, never lost."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class DeadLetter:
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
        with self._lock:
            self._db.execute(
                "INSERT INTO dead_letters (received_ms, topic, reason, payload) VALUES (?,?,?,?)",
                (int(time.time() * 1000), topic, reason, payload))

    def entries(self, *, limit: int = 100) -> list[DeadLetter]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, received_ms, topic, reason, payload FROM dead_letters"
                " ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [DeadLetter(*row) for row in rows]

    def remove(self, ids: list[int]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM dead_letters WHERE id = ?", [(i,) for i in ids])

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
