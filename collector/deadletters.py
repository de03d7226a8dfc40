"""Dead letters: messages the collector could not accept, kept with the reason, within a bound.

The store is bounded in count and in bytes: a gateway gone wrong (a unit changed, a clock ten
years ahead) or a bad configuration could otherwise fill the server's disk with letters, a
message at a time. At the bound the OLDEST letters go first (the newest show the fault as it
is now), every drop is counted for good in the file itself (`dropped`, `dropped_bytes`),
logged as an error and shown by the collector's metrics and status, where an alert rule
sees it (docs/collector.md).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_MAX_COUNT = 100_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A refused MQTT message (its topic) or InfluxDB lines (topic `influxdb-write`)."""

    id: int
    received_ms: int
    topic: str
    reason: str
    payload: bytes
    kind: str = ""  # the short reason: invalid, undeclared, unit, future, influx_refused…


@dataclass(frozen=True, slots=True)
class DeadLetterStats:
    """What the store holds, and what its bound dropped since the file was made."""

    count: int
    bytes: int  # payload bytes
    dropped: int
    dropped_bytes: int


class DeadLetterStore:
    """An SQLite table of refused messages; safe to use from several threads.

    `on_drop(count, bytes)` is told of every letter the bound drops (the collector's counters).
    """

    def __init__(self, path: Path | str, *, max_count: int = DEFAULT_MAX_COUNT,
                 max_bytes: int = DEFAULT_MAX_BYTES,
                 on_drop: Callable[[int, int], None] = lambda _count, _bytes: None) -> None:
        if max_count < 1 or max_bytes < 1:
            raise ValueError("max_count and max_bytes must be at least 1")
        self.max_count, self.max_bytes = max_count, max_bytes
        self._on_drop = on_drop
        self._lock = threading.Lock()
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")  # a purge from the command line meanwhile
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " received_ms INTEGER NOT NULL, topic TEXT NOT NULL, reason TEXT NOT NULL,"
            " payload BLOB NOT NULL)")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(dead_letters)")}
        if "kind" not in columns:  # files written before letters had a kind
            self._db.execute("ALTER TABLE dead_letters ADD COLUMN kind TEXT NOT NULL DEFAULT ''")
        self._db.execute("CREATE TABLE IF NOT EXISTS totals (name TEXT PRIMARY KEY,"
                         " value INTEGER NOT NULL)")
        # Running totals, so that `add` need not sum the table; exact again after each trim.
        self._count, self._bytes = self._measure()

    def _measure(self) -> tuple[int, int]:
        count, size = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM dead_letters").fetchone()
        return int(count), int(size)

    def add(self, *, topic: str, reason: str, payload: bytes, kind: str = "invalid") -> None:
        """Store a refused message durably (SQLite commits before this returns); beyond the
        bound, drop the oldest letters."""
        with self._lock:
            self._db.execute(
                "INSERT INTO dead_letters (received_ms, topic, reason, payload, kind)"
                " VALUES (?,?,?,?,?)", (int(time.time() * 1000), topic, reason, payload, kind))
            self._count += 1
            self._bytes += len(payload)
            if self._count > self.max_count or self._bytes > self.max_bytes:
                dropped = self._trim()
            else:
                dropped = (0, 0)
        if dropped[0]:
            log.error("dead-letter store full (%d letters, %d bytes at most): dropped the %d "
                      "oldest (%d bytes)", self.max_count, self.max_bytes, *dropped,
                      extra={"reason": "dead_letters_dropped"})
            self._on_drop(*dropped)

    def _trim(self) -> tuple[int, int]:
        """Drop the oldest letters until the store is within its bound (lock held)."""
        self._count, self._bytes = self._measure()  # another process may have purged
        excess_count = self._count - self.max_count
        excess_bytes = self._bytes - self.max_bytes
        if excess_count <= 0 and excess_bytes <= 0:
            return 0, 0
        last, count, size = None, 0, 0
        for letter_id, length in self._db.execute(
                "SELECT id, LENGTH(payload) FROM dead_letters ORDER BY id"):
            if count >= excess_count and size >= excess_bytes:
                break
            last, count, size = letter_id, count + 1, size + int(length)
        self._db.execute("BEGIN")
        self._db.execute("DELETE FROM dead_letters WHERE id <= ?", (last,))
        for name, delta in (("dropped", count), ("dropped_bytes", size)):
            self._db.execute("INSERT INTO totals (name, value) VALUES (?, ?) ON CONFLICT(name)"
                             " DO UPDATE SET value = value + excluded.value", (name, delta))
        self._db.execute("COMMIT")
        self._count -= count
        self._bytes -= size
        return count, size

    def entries(self, *, limit: int = 100, ids: list[int] | None = None,
                kind: str | None = None) -> list[DeadLetter]:
        """The oldest `limit` letters (of `kind`), or those of `ids` (unknown ids skipped)."""
        query = "SELECT id, received_ms, topic, reason, payload, kind FROM dead_letters"
        with self._lock:
            if ids is not None:
                rows = [row for i in ids for row in self._db.execute(
                    f"{query} WHERE id = ?", (i,)).fetchall()]
            elif kind is not None:
                rows = self._db.execute(f"{query} WHERE kind = ? ORDER BY id LIMIT ?",
                                        (kind, limit)).fetchall()
            else:
                rows = self._db.execute(f"{query} ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [DeadLetter(*row) for row in rows]

    def remove(self, ids: list[int]) -> None:
        """Forget these letters (after a successful replay)."""
        with self._lock:
            self._db.executemany("DELETE FROM dead_letters WHERE id = ?", [(i,) for i in ids])
            self._count, self._bytes = self._measure()

    def purge(self, *, received_before_ms: int | None = None, kind: str | None = None,
              dry_run: bool = False) -> int:
        """Delete the letters received before `received_before_ms` and/or of `kind` (all when
        neither is given); returns how many (would be) deleted. Not counted as dropped: an
        operator decided."""
        where, params = _filter(received_before_ms, kind)
        with self._lock:
            if dry_run:
                return int(self._db.execute(f"SELECT COUNT(*) FROM dead_letters{where}",
                                            params).fetchone()[0])
            deleted = self._db.execute(f"DELETE FROM dead_letters{where}", params).rowcount
            self._count, self._bytes = self._measure()
        return int(deleted)

    def count(self) -> int:
        """How many letters are stored."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])

    def stats(self) -> DeadLetterStats:
        """Letters and bytes held, letters and bytes the bound dropped (since the file began)."""
        with self._lock:
            count, size = self._measure()
            totals = dict(self._db.execute("SELECT name, value FROM totals").fetchall())
        return DeadLetterStats(count, size, int(totals.get("dropped", 0)),
                               int(totals.get("dropped_bytes", 0)))

    def kinds(self) -> dict[str, int]:
        """How many letters of each kind are stored."""
        with self._lock:
            return {str(kind): int(n) for kind, n in self._db.execute(
                "SELECT kind, COUNT(*) FROM dead_letters GROUP BY kind ORDER BY kind")}

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def _filter(received_before_ms: int | None, kind: str | None) -> tuple[str, tuple[object, ...]]:
    clauses: list[str] = []
    params: list[object] = []
    if received_before_ms is not None:
        clauses.append("received_ms < ?")
        params.append(received_before_ms)
    if kind is not None:
        clauses.append("kind = ?")
        params.append(kind)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)
