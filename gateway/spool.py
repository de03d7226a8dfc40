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

**Write-behind** (`SpoolOptions.write_behind_s` > 0; docs/gateway.md, "SD-card writes"): even
one synced page per poll cycle is more than three times a cycle's readings, so the spool can
keep its recent messages in a second SQLite file in RAM (`ram_dir`, a tmpfs: it outlives the
process, not the power), attached to the card's as the schema `recent`. Messages are committed
there; every `write_behind_s / 2` (`flush`) those older than the previous flush that are still
held move to the card in one synced transaction, so a message the collector acknowledges within
that time never reaches the card. The two files are read as one (`read`, `get`, counters). A
`kill -9` loses nothing (the file is in the kernel's hands); a clean stop moves everything to
the card (`close`), so an older release, or a reboot, finds it there. A power cut loses what the
RAM held and was not acknowledged: at most the last `write_behind_s` seconds of readings.

Then the exact last number used is lost too. So that no number is ever used twice, the card holds
a *reservation*: the numbering may run up to `reserved` without writing the card, and a synced
commit pushes it `_RESERVE` further before it is reached. After a power cut (the RAM file is
gone, or unreadable) numbering resumes at `reserved`, and the numbers from the card's next one
to `reserved - 1`, which the gateway can no longer account for (each was acknowledged, lost with
the cut, or never used), are announced as `void` in the gateway's status (collector.sequence).

With write-behind the card's file is opened in SQLite's exclusive locking mode: its WAL index
then lives in the process's memory instead of the `-shm` file, whose memory-mapped pages were
written back to the card at every flush, more than the flush's own WAL frames (measured:
docs/gateway.md). Only the gateway reads the file while it runs: `dynamo gateway spool` asks
its metrics then (the RAM file stays readable).

When the spool reaches its bound (`SpoolOptions.max_messages`), it keeps every device's data
but thins the oldest half: one message per device per minute, then per ten minutes, then per
hour (`thin_steps_s`); only if that is not enough are the oldest messages dropped. Both are
counted, persisted and reported in the gateway's status.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import secrets
import sqlite3
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from telemetry.site import SpoolOptions

log = logging.getLogger(__name__)

_PAGE_SIZE = 512  # bytes, the smallest SQLite allows; its default is 4096 (see the docstring)
# Write-behind: numbers reserved on the card at a time. One synced commit per this many messages
# (~55 min for three devices at 10 s); after a power cut at most this many numbers are void.
_RESERVE = 1000
_COLUMNS = "seq, device, ts, mono_ms, topic, payload, refused"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {schema}.messages (
    seq INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    ts INTEGER NOT NULL,
    mono_ms INTEGER,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    refused TEXT  -- the broker's reason when it refused the last attempt, else NULL
);
CREATE TABLE IF NOT EXISTS {schema}.state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class SpoolError(Exception):
    """The spool file cannot be opened or written (disk full, read-only, corrupt)."""


class SpoolBusy(SpoolError):
    """Another process holds the spool file: a running gateway, with write-behind."""


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
    # Write-behind: the numbers the last power cut left unaccounted for, [first, last]
    void: tuple[int, int] | None = None
    oldest_ts: int | None = None  # the timestamp (ms) of the oldest message held


class Spool:
    """A bounded FIFO of encoded messages in one SQLite file (and, with write-behind, a second
    one in RAM); one user (thread) at a time.

    `owner=False` (the `dynamo gateway spool` command, beside a running gateway): reads both
    files as they are and changes nothing at opening or closing.
    """

    def __init__(self, *, path: Path, options: SpoolOptions | None = None,
                 owner: bool = True) -> None:
        self.path = path
        self.options = options or SpoolOptions()
        self.owner = owner
        self.ram_path = ram_path(path, self.options) if self.options.write_behind_s else None
        self.void: tuple[int, int] | None = None
        self._oldest_ts: int | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: every transaction below is explicit.
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                       uri=not owner,  # the RAM file read-only: a URI
                                       timeout=5.0 if owner else 1.0)
            self._db.execute(f"PRAGMA page_size={_PAGE_SIZE}")  # new files only
            if self.ram_path is not None and owner:
                # Before the first access in WAL mode: no -shm file (see the docstring).
                self._db.execute("PRAGMA main.locking_mode=EXCLUSIVE")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={self.options.synchronous.upper()}")
            self._db.executescript(_SCHEMA.format(schema="main"))
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(messages)")}
            if "refused" not in columns:  # a spool written by an older version
                self._db.execute("ALTER TABLE messages ADD COLUMN refused TEXT")
            card = self._state("main")
            fresh = self._attach_ram(card) if self.ram_path is not None else False
            ram = self._state("recent") if self.ram_path is not None else {}
            last = max((self._max_seq(schema) for schema in self._schemas), default=-1)
            self.depth = sum(self._count(schema) for schema in self._schemas)
        except (sqlite3.Error, OSError) as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise SpoolBusy(f"spool {path}: held by a running gateway ({exc})") from exc
            raise SpoolError(f"spool {path}: {exc}") from exc
        self.next_seq = max(int(card.get("next_seq", 0)), int(ram.get("next_seq", 0)), last + 1)
        self.reserved = int(card.get("reserved", self.next_seq))
        self.thinned = int(card.get("thinned", 0))
        self.dropped = int(card.get("dropped", 0))
        if "void_first" in card:
            self.void = (int(card["void_first"]), int(card["void_last"]))
        self.floor = self._lowest()
        self._mark = self.next_seq  # write-behind: what the next flush moves is below this
        if fresh and owner and self.reserved > self.next_seq:
            self._resume_after_power_cut()

    @property
    def _schemas(self) -> tuple[str, ...]:
        return ("main",) if self.ram_path is None else ("main", "recent")

    @property
    def _held(self) -> str:
        """Every message held, as one table (both files with write-behind)."""
        return " UNION ALL ".join(f"SELECT {_COLUMNS} FROM {schema}.messages"
                                  for schema in self._schemas)

    @property
    def _newest(self) -> str:
        """Where new messages and the numbering's state go: the RAM file with write-behind."""
        return self._schemas[-1]

    def _state(self, schema: str) -> dict[str, int]:
        rows = self._db.execute(f"SELECT key, value FROM {schema}.state")
        return {str(key): int(value) for key, value in rows}

    def _max_seq(self, schema: str) -> int:
        last = self._db.execute(f"SELECT max(seq) FROM {schema}.messages").fetchone()[0]
        return -1 if last is None else int(last)

    def _count(self, schema: str) -> int:
        return int(self._db.execute(f"SELECT count(*) FROM {schema}.messages").fetchone()[0])

    def _attach_ram(self, card: dict[str, int]) -> bool:
        """Attach the RAM file as `recent`; True when what it held is gone (a power cut, a
        first start, or a file that is not this spool's): see the module's docstring."""
        assert self.ram_path is not None
        ram = self.ram_path
        if not self.owner:
            # Read as it is; nothing in RAM: an empty stand-in, so that queries stay the same.
            target = f"file:{ram}?mode=ro" if ram.exists() else ":memory:"
            self._db.execute("ATTACH DATABASE ? AS recent", (target,))
            if not ram.exists():
                self._db.executescript(_SCHEMA.format(schema="recent"))
            return False
        ram.parent.mkdir(parents=True, exist_ok=True)
        if not in_memory(ram.parent):
            log.warning("spool %s: ram_dir %s is not a tmpfs: write-behind spares the card "
                        "nothing there (docs/gateway.md, \"SD-card writes\")", self.path,
                        ram.parent)
        if card.get("id") is None:
            card["id"] = secrets.randbits(31)
            with self._transaction():
                self._set("id", card["id"], schema="main")
        fresh = not ram.exists()
        try:
            self._db.execute("ATTACH DATABASE ? AS recent", (str(ram),))
            ok = self._db.execute("PRAGMA recent.quick_check").fetchone()[0] == "ok"
            ram_id = self._db.execute(
                "SELECT value FROM recent.state WHERE key = 'id'").fetchone() if ok else None
        except sqlite3.DatabaseError:
            ok, ram_id = False, None
        if not fresh and (not ok or (ram_id is not None and int(ram_id[0]) != card["id"])):
            log.warning("spool %s: the RAM file %s is not this spool's or is damaged: set "
                        "aside as %s.bad", self.path, ram, ram.name)
            with contextlib.suppress(sqlite3.Error):  # not attached if it could not be read
                self._db.execute("DETACH DATABASE recent")
            ram.replace(ram.with_name(ram.name + ".bad"))
            for suffix in ("-wal", "-shm"):
                ram.with_name(ram.name + suffix).unlink(missing_ok=True)
            self._db.execute("ATTACH DATABASE ? AS recent", (str(ram),))
            fresh = True
        # The RAM file is worth nothing after a power cut: no sync, ever.
        self._db.execute("PRAGMA recent.journal_mode=WAL")
        self._db.execute("PRAGMA recent.synchronous=OFF")
        self._db.executescript(_SCHEMA.format(schema="recent"))
        with self._transaction():
            self._set("id", card["id"], schema="recent")
            # A crash between a flush's two transactions leaves a message in both files.
            self._db.execute("DELETE FROM recent.messages WHERE seq IN"
                             " (SELECT seq FROM main.messages)")
        return fresh

    def _resume_after_power_cut(self) -> None:
        """The RAM file is gone and the last numbers used with it: resume at the reservation,
        and say which numbers are now void (see the module's docstring). From the card's next
        number: below it, everything is on the card or was acknowledged; above, some numbers
        may have been acknowledged too, which the collector has and leaves alone."""
        self.void = (self.next_seq, self.reserved - 1)
        log.warning("spool %s: the RAM file is gone (a power cut?): numbering resumes at %d; "
                    "numbers %d-%d are void (acknowledged, lost with the cut, or never used)",
                    self.path, self.reserved, *self.void)
        self.next_seq = self._mark = self.reserved
        try:
            with self._transaction():
                self._set("void_first", self.void[0], schema="main")
                self._set("void_last", self.void[1], schema="main")
                self._set("next_seq", self.reserved, schema="main")
                self._set("next_seq", self.next_seq, schema="recent")
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: cannot resume after a power cut: {exc}") from exc
        self.floor = self._lowest()

    def close(self) -> None:
        """With write-behind, move everything to the card first (a clean stop loses nothing
        and leaves no void)."""
        if self.ram_path is not None and self.owner:
            self.flush(everything=True)
        self._db.close()

    @property
    def counters(self) -> SpoolCounters:
        return SpoolCounters(self.depth, self.next_seq, self.thinned, self.dropped, self.floor,
                             self.void, self._oldest_ts)

    def _lowest(self) -> int:
        """The lowest seq held (the next one when empty); notes the oldest message's time."""
        oldest = [row for schema in self._schemas for row in self._db.execute(
            f"SELECT seq, ts FROM {schema}.messages ORDER BY seq LIMIT 1")]
        if not oldest:
            self._oldest_ts = None
            return self.next_seq
        seq, ts = min(oldest)
        self._oldest_ts = int(ts)
        return int(seq)

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
        all, none with write-behind); returns their sequence numbers, in order. All are
        committed or none."""
        first = self.next_seq
        rows = [(first + i, m.device, m.ts, m.mono_ms, m.topic, m.encode(first + i))
                for i, m in enumerate(messages)]
        if not rows:
            return []
        try:
            if self.ram_path is not None and first + len(rows) > self.reserved:
                self._reserve(first + len(rows))
            with self._transaction():
                # No write of `next_seq` here: the highest seq held gives it (see the docstring).
                self._db.executemany(
                    f"INSERT INTO {self._newest}.messages (seq, device, ts, mono_ms, topic,"
                    " payload) VALUES (?, ?, ?, ?, ?, ?)", rows)
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: cannot commit message(s) {first}"
                             f"-{first + len(rows) - 1}: {exc}") from exc
        self.next_seq = first + len(rows)
        if self.depth == 0:
            self.floor, self._oldest_ts = first, rows[0][2]
        self.depth += len(rows)
        if self.depth > self.options.max_messages:
            self._shrink()
        return [row[0] for row in rows]

    def _reserve(self, upto: int) -> None:
        """Write-behind: let the numbering run to `upto + _RESERVE` (a synced commit on the
        card)."""
        with self._transaction():
            self._set("reserved", upto + _RESERVE, schema="main")
        self.reserved = upto + _RESERVE

    def flush(self, *, everything: bool = False) -> int:
        """Write-behind: move to the card the messages still held that were committed before
        the previous flush (`everything`: all of them, with the exact numbering: a clean stop).
        One synced transaction on the card, none when there is nothing to move; returns how
        many moved."""
        if self.ram_path is None:
            return 0
        mark = self.next_seq if everything else self._mark
        try:
            moving = int(self._db.execute("SELECT count(*) FROM recent.messages WHERE seq < ?",
                                          (mark,)).fetchone()[0])
            if moving or everything:
                with self._transaction():
                    self._db.execute(f"INSERT OR REPLACE INTO main.messages ({_COLUMNS})"
                                     f" SELECT {_COLUMNS} FROM recent.messages WHERE seq < ?",
                                     (mark,))
                    if everything:
                        self._set("next_seq", self.next_seq, schema="main")
                        self._set("reserved", self.next_seq, schema="main")
                with self._transaction():
                    self._db.execute("DELETE FROM recent.messages WHERE seq < ?", (mark,))
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: cannot move messages to the card: {exc}") \
                from exc
        if everything:
            self.reserved = self.next_seq
        self._mark = self.next_seq
        return moving

    def get(self, seqs: Iterable[int]) -> list[SpooledMessage]:
        """The messages among `seqs` still held, in sequence order."""
        wanted = sorted(set(seqs))
        out: list[SpooledMessage] = []
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT seq, topic, payload FROM ({self._held}) WHERE seq IN ({marks})"
                " ORDER BY seq", chunk)
            out.extend(SpooledMessage(int(s), str(t), bytes(p)) for s, t, p in rows)
        return out

    def remove_acked(self, *, upto: int, stored: Iterable[tuple[int, int]] = ()) -> int:
        """Forget what the collector acknowledged end to end: every seq <= `upto` and each
        [first, last] of `stored`. Returns how many messages went."""
        intervals = list(stored)
        return self._delete(lambda schema: (
            self._db.execute(f"DELETE FROM {schema}.messages WHERE seq <= ?", (upto,)),
            self._db.executemany(f"DELETE FROM {schema}.messages WHERE seq BETWEEN ? AND ?",
                                 intervals)))

    def remove(self, seqs: Iterable[int]) -> None:
        """Forget acknowledged messages (absent ones, e.g. thinned meanwhile, are ignored)."""
        batch = [(s,) for s in seqs]
        if batch:
            self._delete(lambda schema: self._db.executemany(
                f"DELETE FROM {schema}.messages WHERE seq = ?", batch))

    def _delete(self, delete: Callable[[str], object]) -> int:
        """Run `delete(schema)` on each file in one unsynced transaction (see `_transaction`);
        returns how many messages went."""
        try:
            with self._transaction(sync=False):
                before = self._db.total_changes
                for schema in self._schemas:
                    delete(schema)
                removed = self._db.total_changes - before
                if removed:  # the spool may be empty now
                    self._set("next_seq", self.next_seq)
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
                for schema in self._schemas:
                    self._db.executemany(f"UPDATE {schema}.messages SET refused = ? WHERE seq = ?",
                                         [(reason, seq) for seq, reason in marks.items()])
                for reason in marks.values():
                    if reason is not None:
                        self._db.execute(
                            "INSERT INTO main.state (key, value) VALUES (?, 1) ON CONFLICT(key)"
                            " DO UPDATE SET value = value + 1", (f"refused:{reason}",))
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: cannot mark refused messages: {exc}") from exc

    def refused(self) -> dict[int, str]:
        """Messages held whose last attempt the broker refused: seq -> reason."""
        rows = self._db.execute(f"SELECT seq, refused FROM ({self._held})"
                                " WHERE refused IS NOT NULL")
        return {int(seq): str(reason) for seq, reason in rows}

    def refused_totals(self) -> dict[str, int]:
        """Refusals by reason since the spool was created (never reset)."""
        rows = self._db.execute("SELECT key, value FROM main.state WHERE key LIKE 'refused:%'")
        return {str(key)[len("refused:"):]: int(value) for key, value in rows}

    def read(self, *, start: int, end: int | None, limit: int) -> list[SpooledMessage]:
        """Up to `limit` messages with `start` ≤ seq < `end`, oldest first."""
        bounds = (start, self.next_seq if end is None else end, limit)
        branches = " UNION ALL ".join(
            f"SELECT * FROM (SELECT seq, topic, payload FROM {schema}.messages"
            " WHERE seq >= ? AND seq < ? ORDER BY seq LIMIT ?)" for schema in self._schemas)
        rows = self._db.execute(f"{branches} ORDER BY seq LIMIT ?",
                                (*bounds * len(self._schemas), limit))
        return [SpooledMessage(int(s), str(t), bytes(p)) for s, t, p in rows]

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
            f"SELECT seq, payload FROM ({self._held}) WHERE seq >= ? AND mono_ms IS NOT NULL"
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
                for schema in self._schemas:
                    self._db.executemany(
                        f"UPDATE {schema}.messages SET payload = ?, ts = ? WHERE seq = ?", changed)
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: cannot restamp messages: {exc}") from exc
        return len(changed)

    def _shrink(self) -> None:
        """Bring the spool back to 90 % of its bound: thin the oldest half, then drop (on the
        card, with write-behind: everything is moved there first)."""
        self.flush(everything=True)
        target = self.options.max_messages * 9 // 10
        oldest = self._db.execute("SELECT seq FROM main.messages ORDER BY seq LIMIT 1 OFFSET ?",
                                  (self.depth // 2,)).fetchone()
        upto = oldest[0] if oldest else self.next_seq
        with self._transaction():
            for step_s in self.options.thin_steps_s:
                if self.depth <= target:
                    break
                cursor = self._db.execute(
                    "DELETE FROM main.messages WHERE seq < :upto AND seq NOT IN ("
                    " SELECT min(seq) FROM main.messages WHERE seq < :upto"
                    " GROUP BY device, ts / :bucket)",
                    {"upto": upto, "bucket": step_s * 1000})
                self.depth -= cursor.rowcount
                self.thinned += cursor.rowcount
            if self.depth > target:
                cursor = self._db.execute(
                    "DELETE FROM main.messages WHERE seq IN ("
                    " SELECT seq FROM main.messages ORDER BY seq LIMIT ?)",
                    (self.depth - target,))
                self.depth -= cursor.rowcount
                self.dropped += cursor.rowcount
            self._set("thinned", self.thinned, schema="main")
            self._set("dropped", self.dropped, schema="main")
            self._set("next_seq", self.next_seq, schema="main")
        self.floor = self._lowest()

    def _set(self, key: str, value: int, *, schema: str | None = None) -> None:
        """Save `key` in the state of `schema` (default: where new messages go)."""
        self._db.execute(f"INSERT INTO {schema or self._newest}.state (key, value) VALUES (?, ?)"
                         " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def _transaction(self, *, sync: bool = True) -> _Transaction:
        """`sync=False`: commit without syncing the card (only for deletions, whose loss in a
        power cut sends acknowledged messages again; the next synced commit carries them)."""
        relax = not sync and self.options.synchronous != "normal"
        return _Transaction(self._db, restore=self.options.synchronous if relax else None)


def in_memory(directory: Path) -> bool:
    """Whether `directory` is on a tmpfs (or ramfs), by the longest mount point above it in
    /proc/self/mounts; True where that cannot be read (not Linux), which only skips a warning."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return True
    target, best, kind = str(directory.resolve()), "", ""
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        if (target == point or target.startswith(point.rstrip("/") + "/")) \
                and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind in ("tmpfs", "ramfs")


def ram_path(card: Path, options: SpoolOptions) -> Path:
    """The write-behind RAM file of the spool at `card`: named after the card file's absolute
    path, so that two gateways (or two tests) sharing `ram_dir` never share a file."""
    digest = hashlib.sha256(str(card.resolve()).encode()).hexdigest()[:16]
    return Path(options.ram_dir) / f"spool-{digest}.sqlite"


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
        self._db.execute("PRAGMA main.synchronous=NORMAL")  # before BEGIN: per transaction
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._db.execute(f"PRAGMA main.synchronous={self._restore.upper()}")
            raise

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        finally:
            if self._restore is not None:
                self._db.execute(f"PRAGMA main.synchronous={self._restore.upper()}")
