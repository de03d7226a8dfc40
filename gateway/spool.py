"""The spool: the gateway's on-disk store-and-forward buffer, and the one owner of its file.

Every telemetry message is committed here, with its sequence number, *before* it is handed to
MQTT, and removed only once the broker has acknowledged it (PUBACK). A `kill -9` or a power cut
at any instant therefore loses nothing that was committed; at worst a message acknowledged just
before the cut is sent again, which the collector's idempotent writes absorb.

SQLite in WAL mode: an append is one small sequential write to the WAL (no rewrite of the
database pages), and readers never block the writer. `synchronous=FULL` flushes the WAL at each
commit, so a committed message survives a power cut; `NORMAL` flushes only at checkpoints
(kinder to an SD card, but the last commits may vanish in a power cut; a `kill -9` never loses
any). Deletions are batched, one transaction per batch of acknowledgements.

The sequence number lives in the same file and is advanced in the same transaction as the
message it numbers, so it never goes back, across restarts and power cuts alike.

When the spool reaches its bound (`SpoolOptions.max_messages`), it keeps every device's data
but thins the oldest half: one message per device per minute, then per ten minutes, then per
hour (`thin_steps_s`); only if that is not enough are the oldest messages dropped. Both are
counted, persisted and reported in the gateway's status.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from telemetry.site import SpoolOptions

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    ts INTEGER NOT NULL,
    mono_ms INTEGER,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class SpoolError(Exception):
    """The spool file cannot be opened or written (disk full, read-only, corrupt)."""


@dataclass(frozen=True, slots=True)
class SpooledMessage:
    seq: int
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class SpoolCounters:
    depth: int
    next_seq: int
    thinned: int
    dropped: int


class Spool:
    """A bounded FIFO of encoded messages in one SQLite file; one user (thread) at a time."""

    def __init__(self, *, path: Path, options: SpoolOptions | None = None) -> None:
        self.path = path
        self.options = options or SpoolOptions()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: every transaction below is explicit.
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={self.options.synchronous.upper()}")
            self._db.executescript(_SCHEMA)
            state = dict(self._db.execute("SELECT key, value FROM state").fetchall())
            last = self._db.execute("SELECT max(seq) FROM messages").fetchone()[0]
            self.depth = int(self._db.execute("SELECT count(*) FROM messages").fetchone()[0])
        except (sqlite3.Error, OSError) as exc:
            raise SpoolError(f"spool {path}: {exc}") from exc
        self.next_seq = max(int(state.get("next_seq", 0)), -1 if last is None else last + 1)
        self.thinned = int(state.get("thinned", 0))
        self.dropped = int(state.get("dropped", 0))

    def close(self) -> None:
        self._db.close()

    @property
    def counters(self) -> SpoolCounters:
        return SpoolCounters(self.depth, self.next_seq, self.thinned, self.dropped)

    def append(self, *, topic: str, device: str, ts: int, encode: Callable[[int], bytes],
               mono_ms: int | None = None) -> int:
        """Number, encode and commit one message; returns its sequence number.

        `encode(seq)` builds the payload: the number is part of it, and is only used once the
        transaction holding both has committed. `mono_ms`: the monotonic clock at `ts`, which
        tells later which wall clock stamped the message (see `restamp`).
        """
        seq = self.next_seq
        payload = encode(seq)
        try:
            with self._transaction():
                self._db.execute(
                    "INSERT INTO messages (seq, device, ts, mono_ms, topic, payload)"
                    " VALUES (?, ?, ?, ?, ?, ?)", (seq, device, ts, mono_ms, topic, payload))
                self._set("next_seq", seq + 1)
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: cannot commit message {seq}: {exc}") from exc
        self.next_seq = seq + 1
        self.depth += 1
        if self.depth > self.options.max_messages:
            self._shrink()
        return seq

    def read(self, *, start: int, end: int | None, limit: int) -> list[SpooledMessage]:
        """Up to `limit` messages with `start` ≤ seq < `end`, oldest first."""
        rows = self._db.execute(
            "SELECT seq, topic, payload FROM messages WHERE seq >= ? AND seq < ? "
            "ORDER BY seq LIMIT ?", (start, self.next_seq if end is None else end, limit))
        return [SpooledMessage(int(s), str(t), bytes(p)) for s, t, p in rows]

    def remove(self, seqs: Iterable[int]) -> None:
        """Forget acknowledged messages (absent ones, e.g. thinned meanwhile, are ignored)."""
        batch = [(s,) for s in seqs]
        if not batch:
            return
        try:
            with self._transaction():
                before = self._db.total_changes
                self._db.executemany("DELETE FROM messages WHERE seq = ?", batch)
                removed = self._db.total_changes - before
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: cannot remove messages: {exc}") from exc
        self.depth -= removed

    def restamp(self, *, first_seq: int, offset_ms: int, delta_ms: int,
                skip: Iterable[int] = ()) -> int:
        """Shift by `delta_ms` the timestamps of messages stamped by a wrong wall clock.

        A wrong clock is recognised by its offset to the monotonic clock (`ts - mono_ms`,
        within a second of `offset_ms`), so that messages stamped after the clock was set are
        left alone. Only messages from `first_seq` on (this boot) are considered; `skip`: those
        already handed to MQTT, which can no longer change. Returns how many moved.
        """
        skipped = set(skip)
        rows = self._db.execute(
            "SELECT seq, payload FROM messages WHERE seq >= ? AND mono_ms IS NOT NULL"
            " AND abs(ts - mono_ms - ?) < 1000", (first_seq, offset_ms)).fetchall()
        changed = []
        for seq, payload in rows:
            if seq in skipped:
                continue
            document = json.loads(payload)
            if not isinstance(document, dict) or not isinstance(document.get("ts"), int):
                continue
            document["ts"] += delta_ms
            changed.append((json.dumps(document, separators=(",", ":")).encode(),
                            document["ts"], seq))
        try:
            with self._transaction():
                self._db.executemany("UPDATE messages SET payload = ?, ts = ? WHERE seq = ?",
                                     changed)
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: cannot restamp messages: {exc}") from exc
        return len(changed)

    def _shrink(self) -> None:
        """Bring the spool back to 90 % of its bound: thin the oldest half, then drop."""
        target = self.options.max_messages * 9 // 10
        oldest = self._db.execute("SELECT seq FROM messages ORDER BY seq LIMIT 1 OFFSET ?",
                                  (self.depth // 2,)).fetchone()
        upto = oldest[0] if oldest else self.next_seq
        with self._transaction():
            for step_s in self.options.thin_steps_s:
                if self.depth <= target:
                    break
                cursor = self._db.execute(
                    "DELETE FROM messages WHERE seq < :upto AND seq NOT IN ("
                    " SELECT min(seq) FROM messages WHERE seq < :upto"
                    " GROUP BY device, ts / :bucket)",
                    {"upto": upto, "bucket": step_s * 1000})
                self.depth -= cursor.rowcount
                self.thinned += cursor.rowcount
            if self.depth > target:
                cursor = self._db.execute(
                    "DELETE FROM messages WHERE seq IN ("
                    " SELECT seq FROM messages ORDER BY seq LIMIT ?)", (self.depth - target,))
                self.depth -= cursor.rowcount
                self.dropped += cursor.rowcount
            self._set("thinned", self.thinned)
            self._set("dropped", self.dropped)

    def _set(self, key: str, value: int) -> None:
        self._db.execute("INSERT INTO state (key, value) VALUES (?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
