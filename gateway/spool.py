"""The spool: the gateway's on-disk store-and-forward buffer, and the one owner of its file.

Every telemetry message is committed here, with its sequence number, *before* it is handed to
MQTT, and removed only once the collector has acknowledged it end to end: stored in InfluxDB
(`remove_acked`, from the retained ack of collector/acks.py). The broker's PUBACK only paces the
sending; a message the broker refuses (MQTT 5 reason code >= 0x80) stays, marked with the
reason (`mark_refused`), and is sent again. A `kill -9` or a power cut at any instant therefore
loses nothing that was committed; at worst a message stored just before the cut is sent again,
which the collector's idempotent writes absorb.

SQLite in WAL mode: a commit appends the pages it changed to the WAL, sequentially (the
database file is rewritten only at checkpoints), and readers never block the writer.
`synchronous=FULL` syncs the WAL at each commit, so a committed message survives a power
cut; `NORMAL` syncs only at checkpoints: still durable against a crash of the process
(`kill -9`: the WAL is in the operating system's hands once written), but the last commits may
vanish in a power cut (docs/gateway.md: FULL on a Pi). Deletions are batched, one transaction
per acknowledgement.

SD-card writes (docs/gateway.md, "SD-card writes"; bench/gateway/sdcard.py): every synced commit
costs at least one page of the card, whatever its size, so the spool syncs as few commits as the
guarantee allows. Messages that arrive together (one poll cycle's devices) are committed in one
transaction (`append_many`); the sequence number is not rewritten at each append (the highest
seq held gives it) but saved in the transactions that delete; deletions are committed without
their own sync (`synchronous=NORMAL` for that transaction only): the next append's sync carries
them to the card, and one that a power cut rolls back only brings acknowledged messages back,
which are sent again and absorbed by the collector's idempotent writes. New spool files use
512-byte pages: a commit rewrites whole B-tree pages, and the smaller they are, the fewer bytes
(a message larger than a page takes an overflow page: still fewer bytes than 1 or 4 KiB pages,
as measured).

The sequence number never goes back, across restarts and power cuts alike: it is the highest
seq held plus one, or, when the spool is empty, the `next_seq` saved by the transaction that
emptied it (the two are read together at start).

When the spool reaches its bound (`SpoolOptions.max_messages`), it keeps every device's data
but thins the oldest half: one message per device per minute, then per ten minutes, then per
hour (`thin_steps_s`); only if that is not enough are the oldest messages dropped. Both are
counted, persisted and reported in the gateway's status.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from telemetry.site import SpoolOptions

_PAGE_SIZE = 512  # bytes, the smallest SQLite allows; its default is 4096 (see the docstring)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    ts INTEGER NOT NULL,
    mono_ms INTEGER,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    refused TEXT  -- the broker's reason when it refused the last attempt, else NULL
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
    floor: int = 0  # the lowest seq held (next_seq when empty): everything below is gone


class Spool:
    """A bounded FIFO of encoded messages in one SQLite file; one user (thread) at a time."""

    def __init__(self, *, path: Path, options: SpoolOptions | None = None) -> None:
        self.path = path
        self.options = options or SpoolOptions()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: every transaction below is explicit.
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute(f"PRAGMA page_size={_PAGE_SIZE}")  # new files only
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={self.options.synchronous.upper()}")
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(messages)")}
            if "refused" not in columns:  # a spool written by an older version
                self._db.execute("ALTER TABLE messages ADD COLUMN refused TEXT")
            state = dict(self._db.execute("SELECT key, value FROM state").fetchall())
            last = self._db.execute("SELECT max(seq) FROM messages").fetchone()[0]
            self.depth = int(self._db.execute("SELECT count(*) FROM messages").fetchone()[0])
        except (sqlite3.Error, OSError) as exc:
            raise SpoolError(f"spool {path}: {exc}") from exc
        self.next_seq = max(int(state.get("next_seq", 0)), -1 if last is None else last + 1)
        self.thinned = int(state.get("thinned", 0))
        self.dropped = int(state.get("dropped", 0))
        self.floor = self.next_seq if last is None else self._lowest()

    def close(self) -> None:
        self._db.close()

    @property
    def counters(self) -> SpoolCounters:
        return SpoolCounters(self.depth, self.next_seq, self.thinned, self.dropped, self.floor)

    def _lowest(self) -> int:
        lowest = self._db.execute("SELECT min(seq) FROM messages").fetchone()[0]
        return self.next_seq if lowest is None else int(lowest)

    def append(self, *, topic: str, device: str, ts: int, encode: Callable[[int], bytes],
               mono_ms: int | None = None) -> int:
        """Number, encode and commit one message; returns its sequence number.

        `encode(seq)` builds the payload: the number is part of it, and is only used once the
        transaction holding both has committed. `mono_ms`: the monotonic clock at `ts`, which
        tells later which wall clock stamped the message (see `restamp`).
        """
        return self.append_many([Append(topic=topic, device=device, ts=ts, encode=encode,
                                        mono_ms=mono_ms)])[0]

    def append_many(self, messages: Sequence[Append]) -> list[int]:
        """Number, encode and commit `messages` in one transaction (one sync of the card for
        all); returns their sequence numbers, in order. All are committed or none."""
        first = self.next_seq
        rows = [(first + i, m.device, m.ts, m.mono_ms, m.topic, m.encode(first + i))
                for i, m in enumerate(messages)]
        if not rows:
            return []
        try:
            with self._transaction():
                # No write of `next_seq` here: the highest seq held gives it (see the docstring).
                self._db.executemany(
                    "INSERT INTO messages (seq, device, ts, mono_ms, topic, payload)"
                    " VALUES (?, ?, ?, ?, ?, ?)", rows)
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: cannot commit message(s) {first}"
                             f"-{first + len(rows) - 1}: {exc}") from exc
        self.next_seq = first + len(rows)
        if self.depth == 0:
            self.floor = first
        self.depth += len(rows)
        if self.depth > self.options.max_messages:
            self._shrink()
        return [row[0] for row in rows]

    def get(self, seqs: Iterable[int]) -> list[SpooledMessage]:
        """The messages among `seqs` still held, in sequence order."""
        wanted = sorted(set(seqs))
        out: list[SpooledMessage] = []
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute("SELECT seq, topic, payload FROM messages"
                                    f" WHERE seq IN ({marks}) ORDER BY seq", chunk)
            out.extend(SpooledMessage(int(s), str(t), bytes(p)) for s, t, p in rows)
        return out

    def remove_acked(self, *, upto: int, stored: Iterable[tuple[int, int]] = ()) -> int:
        """Forget what the collector acknowledged end to end: every seq <= `upto` and each
        [first, last] of `stored`. Returns how many messages went."""
        try:
            with self._transaction(sync=False):
                before = self._db.total_changes
                self._db.execute("DELETE FROM messages WHERE seq <= ?", (upto,))
                self._db.executemany("DELETE FROM messages WHERE seq BETWEEN ? AND ?",
                                     list(stored))
                removed = self._db.total_changes - before
                self._set("next_seq", self.next_seq)  # the spool may be empty now
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: cannot remove messages: {exc}") from exc
        self.depth -= removed
        if removed:
            self.floor = self._lowest()
        return removed

    def mark_refused(self, marks: dict[int, str | None]) -> None:
        """Record the broker's refusal of messages (reason), or its later acceptance (None).

        Each refusal also counts, by reason, in the persisted totals (`refused_totals`).
        """
        if not marks:
            return
        try:
            with self._transaction():
                self._db.executemany("UPDATE messages SET refused = ? WHERE seq = ?",
                                     [(reason, seq) for seq, reason in marks.items()])
                for reason in marks.values():
                    if reason is not None:
                        self._db.execute(
                            "INSERT INTO state (key, value) VALUES (?, 1) ON CONFLICT(key)"
                            " DO UPDATE SET value = value + 1", (f"refused:{reason}",))
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: cannot mark refused messages: {exc}") from exc

    def refused(self) -> dict[int, str]:
        """Messages held whose last attempt the broker refused: seq -> reason."""
        rows = self._db.execute("SELECT seq, refused FROM messages WHERE refused IS NOT NULL")
        return {int(seq): str(reason) for seq, reason in rows}

    def refused_totals(self) -> dict[str, int]:
        """Refusals by reason since the spool was created (never reset)."""
        rows = self._db.execute("SELECT key, value FROM state WHERE key LIKE 'refused:%'")
        return {str(key)[len("refused:"):]: int(value) for key, value in rows}

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
            with self._transaction(sync=False):
                before = self._db.total_changes
                self._db.executemany("DELETE FROM messages WHERE seq = ?", batch)
                removed = self._db.total_changes - before
                self._set("next_seq", self.next_seq)  # the spool may be empty now
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: cannot remove messages: {exc}") from exc
        self.depth -= removed
        if removed:
            self.floor = self._lowest()

    def restamp(self, *, first_seq: int, offset_ms: int, delta_ms: int,
                skip: Container[int] = ()) -> int:
        """Shift by `delta_ms` the timestamps of messages stamped by a wrong wall clock.

        A wrong clock is recognised by its offset to the monotonic clock (`ts - mono_ms`,
        within a second of `offset_ms`), so that messages stamped after the clock was set are
        left alone. Only messages from `first_seq` on (this boot) are considered; `skip`: those
        already handed to MQTT, which can no longer change. Returns how many moved.
        """
        skipped = skip
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
            self._set("next_seq", self.next_seq)
        self.floor = self._lowest()

    def _set(self, key: str, value: int) -> None:
        self._db.execute("INSERT INTO state (key, value) VALUES (?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def _transaction(self, *, sync: bool = True) -> _Transaction:
        """`sync=False`: commit without syncing the card (only for deletions, whose loss in a
        power cut sends acknowledged messages again; the next synced commit carries them)."""
        relax = not sync and self.options.synchronous != "normal"
        return _Transaction(self._db, restore=self.options.synchronous if relax else None)


@dataclass(frozen=True, slots=True)
class Append:
    """One message for `Spool.append_many`; `encode(seq)` builds its payload."""

    topic: str
    device: str
    ts: int
    encode: Callable[[int], bytes]
    mono_ms: int | None = None


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any error; `restore`: run this one transaction
    with `synchronous=NORMAL`, then set the connection back to `restore`."""

    def __init__(self, db: sqlite3.Connection, *, restore: str | None = None) -> None:
        self._db = db
        self._restore = restore

    def __enter__(self) -> None:
        if self._restore is None:
            self._db.execute("BEGIN IMMEDIATE")
            return
        self._db.execute("PRAGMA synchronous=NORMAL")  # before BEGIN: per transaction
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._db.execute(f"PRAGMA synchronous={self._restore.upper()}")
            raise

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        finally:
            if self._restore is not None:
                self._db.execute(f"PRAGMA synchronous={self._restore.upper()}")
