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
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from gateway.spool import Spool
from telemetry.site import SpoolOptions

pytestmark = pytest.mark.fault

ROUNDS = 50


def _writer(path: str, log_path: str, seed: int) -> None:
    """The child: write the spool until killed."""
    rng = random.Random(seed)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def note(text: str) -> None:
        os.write(log, f"{text}\n".encode())

    spool = Spool(path=Path(path), options=SpoolOptions(max_messages=100_000))
    held = [m.seq for m in spool.read(start=0, end=None, limit=1_000_000)]
    while True:
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


def _covered(seq: int, ack: tuple[int, int, int]) -> bool:
    upto, first, last = ack
    return seq <= upto or first <= seq <= last


def test_kill_9_at_50_random_points_loses_nothing_unacknowledged(tmp_path: Path) -> None:
    path, log_path = tmp_path / "spool.sqlite", tmp_path / "steps.log"
    rng = random.Random()
    context = multiprocessing.get_context("fork")
    last_next_seq = 0
    for round_ in range(ROUNDS):
        child = context.Process(target=_writer, args=(str(path), str(log_path),
                                                      rng.randrange(1 << 30)), daemon=True)
        child.start()
        time.sleep(rng.uniform(0.03, 0.25))
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        assert child.exitcode == -signal.SIGKILL, f"round {round_}: the writer died by itself"
        # Reopened as the restarted gateway would: whole, and the numbering never goes back.
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
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
