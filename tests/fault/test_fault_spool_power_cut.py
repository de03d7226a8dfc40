"""`kill -9` of a process writing the spool, at 50 random points: the spool opens intact, every
message committed and not acknowledged end to end is there, nothing acknowledged comes back,
and the sequence never goes back.

The writer is a real child process (forked: no interpreter start-up per round) doing what the
gateway's forwarder does to the spool, with random pauses: commit polls, apply end-to-end
acknowledgements (a watermark and an interval), mark refusals. It logs each step to an
append-only file *after* SQLite returned (and an acknowledgement also *before*), so the log
says what was surely committed; a kill between a commit and its log line leaves a message the
log does not know, which is allowed. SQLite runs with the gateway's default `synchronous=FULL`
(docs/gateway.md: a `kill -9` is a process crash; FULL is what also covers a power cut).

With write-behind the writer also flushes to the card now and then, and each kill takes the
RAM file with it (a power cut): what a completed flush moved must be there, what was lost must
have its number declared void, and no number may be given twice.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.spool import Spool
from telemetry.site import SpoolOptions

pytestmark = pytest.mark.fault

ROUNDS = 50


def _writer(path: str, log_path: str, seed: int, ram_dir: str | None = None) -> None:
    """The child: write the spool until killed. `ram_dir`: with write-behind, flushing to the
    card now and then (logged, once returned, with the mark below which it moved messages)."""
    rng = random.Random(seed)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def note(text: str) -> None:
        os.write(log, f"{text}\n".encode())

    options = SpoolOptions(max_messages=100_000) if ram_dir is None else \
        SpoolOptions(max_messages=100_000, write_behind_s=60, ram_dir=ram_dir)
    spool = Spool(path=Path(path), options=options)
    held = [m.seq for m in spool.read(start=0, end=None, limit=1_000_000)]
    while True:
        if ram_dir is not None and rng.random() < 0.1:
            mark = spool._mark  # what this flush moves: everything held below it
            spool.flush()
            note(f"f {mark}")
        seq = spool.append(topic="dynamo/v1/s/gw/telemetry/rig", device="meter",
                           ts=1_800_000_000_000 + rng.randrange(10**9),
                           encode=lambda n: f'{{"seq":{n},"pad":"{"x" * 200}"}}'.encode())
        note(f"c {seq}")
        held.append(seq)
        if len(held) > 6 and rng.random() < 0.3:
            upto, first, last = held[len(held) // 3], held[-4], held[-3]
            note(f"a+ {upto} {first} {last}")
            spool.remove_acked(upto=upto, stored=[(first, last)])
            note(f"a {upto} {first} {last}")
            held = [s for s in held if s > upto and not first <= s <= last]
        if held and rng.random() < 0.2:
            spool.mark_refused({rng.choice(held): "0x87 Not authorized"})
        time.sleep(rng.uniform(0, 0.004))


def _kill_a_writer(context: Any, rng: random.Random, round_: int, path: Path, log_path: Path,
                   ram_dir: Path | None = None) -> None:
    """Start a writer, let it write for a random while, `kill -9` it."""
    child = context.Process(target=_writer, args=(str(path), str(log_path), rng.randrange(1 << 30),
                                                  None if ram_dir is None else str(ram_dir)),
                            daemon=True)
    child.start()
    time.sleep(rng.uniform(0.03, 0.25))
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert child.exitcode == -signal.SIGKILL, f"round {round_}: the writer died by itself"


def _assert_intact(path: Path) -> None:
    """SQLite finds the file whole (the connection closed: a write-behind spool opens it
    alone)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def _covered(seq: int, ack: tuple[int, int, int]) -> bool:
    upto, first, last = ack
    return seq <= upto or first <= seq <= last


def test_kill_9_at_50_random_points_loses_nothing_unacknowledged(tmp_path: Path) -> None:
    path, log_path = tmp_path / "spool.sqlite", tmp_path / "steps.log"
    rng = random.Random()
    context = multiprocessing.get_context("fork")
    last_next_seq = 0
    for round_ in range(ROUNDS):
        _kill_a_writer(context, rng, round_, path, log_path)
        # Reopened as the restarted gateway would: whole, and the numbering never goes back.
        _assert_intact(path)
        spool = Spool(path=path)
        assert spool.next_seq >= last_next_seq
        last_next_seq = spool.next_seq
        spool.close()
    committed: list[int] = []
    started: list[tuple[int, int, int]] = []
    done: list[tuple[int, int, int]] = []
    for line in log_path.read_text().splitlines():
        kind, *numbers = line.split()
        values = [int(n) for n in numbers]
        if kind == "c":
            committed.append(values[0])
        else:
            (started if kind == "a+" else done).append((values[0], values[1], values[2]))
    spool = Spool(path=path)
    present = {m.seq for m in spool.read(start=0, end=None, limit=1_000_000)}
    assert spool.next_seq > max(committed)
    spool.close()
    assert len(committed) == len(set(committed)), "a sequence number was given twice"
    assert len(done) >= ROUNDS // 5, "too few acknowledgements to prove anything"
    # Committed and not acknowledged (not even by an acknowledgement the kill interrupted):
    # must be there.
    must_stay = [s for s in committed if not any(_covered(s, a) for a in started)]
    missing = [s for s in must_stay if s not in present]
    assert not missing, f"{len(missing)} committed, unacknowledged message(s) lost: {missing[:10]}"
    # Acknowledged (the removal returned): must never come back.
    back = [s for s in present if any(_covered(s, a) for a in done)]
    assert not back, f"acknowledged message(s) back in the spool: {back[:10]}"
    assert len(must_stay) > 0


def test_write_behind_power_cuts_at_50_random_points_reuse_no_number_and_declare_every_loss(
        tmp_path: Path) -> None:
    """The same writer with write-behind, and at each kill the RAM file goes too (a power cut:
    the tmpfs is lost). What a completed flush moved to the card and was not acknowledged must
    be there; what was only in RAM may be gone, but then its number lies in a range the spool
    declared void; and no number is ever given twice."""
    path, log_path, ram_dir = tmp_path / "spool.sqlite", tmp_path / "steps.log", tmp_path / "ram"
    options = SpoolOptions(max_messages=100_000, write_behind_s=60, ram_dir=str(ram_dir))
    rng = random.Random()
    context = multiprocessing.get_context("fork")
    voids: list[tuple[int, int]] = []
    for round_ in range(ROUNDS):
        _kill_a_writer(context, rng, round_, path, log_path, ram_dir)
        for file in ram_dir.iterdir():  # the power goes: the tmpfs with it
            file.unlink()
        with log_path.open("a") as log:
            log.write("k\n")  # what RAM held before this line is gone
        _assert_intact(path)
        steps = _steps(log_path)
        spool = Spool(path=path, options=options)
        try:
            if spool.void is not None and spool.void not in voids:
                voids.append(spool.void)
            present = {m.seq for m in spool.read(start=0, end=None, limit=1_000_000)}
            committed = steps.committed
            assert len(committed) == len(set(committed)), "a sequence number was given twice"
            if committed:
                assert spool.next_seq > max(committed), f"round {round_}: numbers reused"
            unacknowledged = [s for s in committed
                              if not any(_covered(s, a) for a in steps.started)]
            # On the card: below the mark of the last completed flush of its own numbering.
            flushed = [s for s in unacknowledged if s < steps.flushed_below(s)]
            assert not [s for s in flushed if s not in present], \
                f"round {round_}: flushed, unacknowledged messages lost"
            lost = [s for s in unacknowledged if s not in present]
            undeclared = [s for s in lost if not any(a <= s <= b for a, b in voids)]
            assert not undeclared, f"round {round_}: lost and not declared void: {undeclared[:10]}"
        finally:
            spool.close()
            for file in ram_dir.iterdir():  # closing moved RAM to the card: undo, as a cut
                file.unlink()
    final = _steps(log_path)
    assert len(voids) >= ROUNDS // 2, "too few power cuts with numbers in RAM to prove anything"
    assert len(final.flushes) >= ROUNDS // 5, "too few flushes to prove anything"


class _Steps:
    """What the writers' log says: commits (in order), acknowledgements started, and flushes
    as (power cuts before it, commits before it, mark)."""

    def __init__(self) -> None:
        self.committed: list[int] = []
        self.cuts_before: list[int] = []  # for each commit, the power cuts before it
        self.started: list[tuple[int, int, int]] = []
        self.flushes: list[tuple[int, int, int]] = []
        self.cuts = 0

    def flushed_below(self, seq: int) -> int:
        """The highest mark of the flushes that completed after `seq` was committed and before
        the next power cut (0: none): `seq` is on the card if it is below it and was not
        acknowledged."""
        index = self.committed.index(seq)
        marks = [mark for cuts, after, mark in self.flushes
                 if after > index and cuts == self.cuts_before[index]]
        return max(marks, default=0)


def _steps(log_path: Path) -> _Steps:
    steps = _Steps()
    if not log_path.exists():
        return steps
    for line in log_path.read_text().splitlines():
        kind, *numbers = line.split()
        values = [int(n) for n in numbers]
        if kind == "c":
            steps.committed.append(values[0])
            steps.cuts_before.append(steps.cuts)
        elif kind == "a+":
            steps.started.append((values[0], values[1], values[2]))
        elif kind == "f":
            steps.flushes.append((steps.cuts, len(steps.committed), values[0]))
        elif kind == "k":
            steps.cuts += 1
    return steps
