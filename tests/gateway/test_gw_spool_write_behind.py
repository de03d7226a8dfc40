"""The write-behind spool (gateway/spool.py, docs/gateway.md "SD-card writes"): recent messages
in a RAM file, on the card only if not acknowledged in time; a killed process loses nothing, a
power cut loses at most the RAM's unacknowledged messages and never reuses a number. On real
SQLite files: the "RAM" directory is a tmpfs (/dev/shm) when the machine has one, and a
`kill -9` is a real one, of a child process."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gwkit import spooled_seqs

from gateway.spool import _RESERVE, Append, Spool, SpoolBusy, ram_path
from telemetry.site import SpoolOptions

TOPIC = "dynamo/v1/test/test-gw/telemetry/rig"


def _message(ts: int) -> Append:
    return Append(topic=TOPIC, device="meter", ts=ts,
                  encode=lambda seq: f'{{"seq":{seq},"ts":{ts}}}'.encode())


@pytest.fixture
def ram_dir(tmp_path: Path) -> Iterator[Path]:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        directory = shm / f"dynamo-test-{os.getpid()}-{tmp_path.name}"
        directory.mkdir()
        yield directory
        for child in directory.iterdir():
            child.unlink()
        directory.rmdir()
    else:  # still a real file; only the "survives the process, not the power" part is tmpfs's
        yield tmp_path / "ram"


def _options(ram_dir: Path, **extra: object) -> SpoolOptions:
    return SpoolOptions.model_validate({"write_behind_s": 60, "ram_dir": str(ram_dir), **extra})


def _card_state(card: Path) -> dict[str, int]:
    """The card's state, from its file (the spool closed or its process gone)."""
    db = sqlite3.connect(f"file:{card}?mode=ro", uri=True)
    try:
        return {str(k): int(v) for k, v in db.execute("SELECT key, value FROM state")}
    finally:
        db.close()


def _running_state(spool: Spool) -> dict[str, int]:
    """The card's state, read on the spool's own connection: a running write-behind spool
    holds the card's file (no other process reads it)."""
    return {str(k): int(v) for k, v in spool._db.execute("SELECT key, value FROM main.state")}


def _on_card(spool: Spool) -> list[int]:
    """The seqs on the card, read on the running spool's own connection."""
    return [int(r[0]) for r in spool._db.execute("SELECT seq FROM main.messages ORDER BY seq")]


def _card_bytes(card: Path) -> int:
    return sum(p.stat().st_size for p in card.parent.glob(card.name + "*"))


def test_acknowledged_messages_never_reach_the_card(tmp_path: Path, ram_dir: Path) -> None:
    card = tmp_path / "spool.sqlite"
    spool = Spool(path=card, options=_options(ram_dir))
    before = _card_bytes(card)
    for cycle in range(10):  # ten poll cycles of three devices, each acknowledged in time
        seqs = spool.append_many([_message(cycle * 10_000 + d) for d in range(3)])
        spool.remove_acked(upto=seqs[-1])
        spool.flush()
    assert spool.next_seq == 30 and spool.depth == 0
    assert _on_card(spool) == []
    # One commit reached the card: the reservation of numbers, at the first append
    # (0 + 3 + _RESERVE); none of the thirty messages did.
    state = _running_state(spool)
    assert state["reserved"] == 3 + _RESERVE  # reserved once, at the first append (seqs 0-2)
    assert _card_bytes(card) - before <= 2 * 4096  # that one commit's WAL frames, no more
    spool.close()


def test_unacknowledged_messages_move_to_the_card_one_flush_later(tmp_path: Path,
                                                                    ram_dir: Path) -> None:
    card = tmp_path / "spool.sqlite"
    spool = Spool(path=card, options=_options(ram_dir))
    spool.append_many([_message(i) for i in range(3)])  # 0, 1, 2
    assert spool.flush() == 0  # committed after the previous "flush" (the opening): stay
    spool.append_many([_message(i) for i in range(3, 5)])  # 3, 4
    spool.remove_acked(upto=0)  # 0 acknowledged in time: never on the card
    assert spool.flush() == 2  # 1 and 2 are older than the previous flush and still held
    assert _on_card(spool) == [1, 2]
    assert spool.flush() == 2  # then 3 and 4
    assert _on_card(spool) == [1, 2, 3, 4]
    # Read as one spool, whichever file holds what.
    spool.append_many([_message(5)])  # 5, in RAM
    assert [m.seq for m in spool.read(start=0, end=None, limit=10)] == [1, 2, 3, 4, 5]
    assert [m.seq for m in spool.read(start=2, end=None, limit=2)] == [2, 3]
    assert [m.seq for m in spool.get([5, 1, 99])] == [1, 5]
    assert spool.counters.depth == 5 and spool.counters.floor == 1
    spool.remove_acked(upto=4)
    assert spool.counters.depth == 1 and spool.counters.floor == 5
    assert _on_card(spool) == []
    spool.close()


# In a child process: `cycles` appends of three messages, a flush after cycle `flush_after`
# and after the one before it (so that the messages before the first flush move), then kill -9.
_APPEND_THEN_DIE = """
import os, signal, sys
from pathlib import Path
from gateway.spool import Append, Spool
from telemetry.site import SpoolOptions

card, ram, cycles, flush_after = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
options = SpoolOptions(write_behind_s=60, ram_dir=ram)
spool = Spool(path=Path(card), options=options)
for cycle in range(cycles):
    spool.append_many([Append(topic="t", device="meter", ts=cycle * 10 + d,
                              encode=lambda seq: b"{}") for d in range(3)])
    if cycle in (flush_after - 1, flush_after):
        spool.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


def _run_and_kill(card: Path, ram: Path, cycles: int, flush_after: int) -> None:
    child = subprocess.run([sys.executable, "-c", _APPEND_THEN_DIE, str(card), str(ram),
                            str(cycles), str(flush_after)], capture_output=True, text=True,
                           timeout=60, check=False)
    assert child.returncode == -signal.SIGKILL, child.stderr


def test_a_killed_process_loses_nothing(tmp_path: Path, ram_dir: Path) -> None:
    card = tmp_path / "spool.sqlite"
    _run_and_kill(card, ram_dir, cycles=5, flush_after=2)
    # Cycles 0-4: seqs 0-14. The flush after cycle 1 set the mark at 6; the one after
    # cycle 2 moved 0-5 to the card; 6-14 were in RAM only when the process was killed.
    assert spooled_seqs(card) == list(range(6))
    spool = Spool(path=card, options=_options(ram_dir))
    assert [m.seq for m in spool.read(start=0, end=None, limit=100)] == list(range(15))
    assert spool.next_seq == 15 and spool.void is None
    spool.close()


def test_a_power_cut_resumes_above_the_reservation_and_says_which_numbers_are_void(
        tmp_path: Path, ram_dir: Path) -> None:
    card = tmp_path / "spool.sqlite"
    _run_and_kill(card, ram_dir, cycles=5, flush_after=2)
    ram_path(card, _options(ram_dir)).unlink()  # the tmpfs did not survive the cut
    spool = Spool(path=card, options=_options(ram_dir))
    # On the card: 0-5 (moved by the flush), whose mark was 6 (the lowest number left in RAM).
    # Reserved: at the first append, 0 + 3 + _RESERVE = 1003. 6..14 were used and are gone;
    # 15..1002 were never used; the spool cannot tell them apart: 6..1002 are void.
    assert [m.seq for m in spool.read(start=0, end=None, limit=100)] == list(range(6))
    assert spool.next_seq == 3 + _RESERVE
    assert spool.void == (6, 2 + _RESERVE)
    assert spool.counters.void == (6, 1002)
    assert spool.append_many([_message(99)]) == [1003]  # never a number used before the cut
    spool.close()
    # Said again after a clean restart, from the card.
    again = Spool(path=card, options=_options(ram_dir))
    assert again.void == (6, 1002) and again.next_seq == 1004
    again.close()


def test_a_clean_stop_moves_everything_to_the_card_and_leaves_no_void(
        tmp_path: Path, ram_dir: Path) -> None:
    card = tmp_path / "spool.sqlite"
    spool = Spool(path=card, options=_options(ram_dir))
    spool.append_many([_message(i) for i in range(4)])
    spool.remove_acked(upto=1)
    spool.close()
    assert spooled_seqs(card) == [2, 3]
    assert _card_state(card)["reserved"] == 4  # the exact next number: no void at a reboot
    ram_path(card, _options(ram_dir)).unlink()  # a reboot clears the tmpfs
    reopened = Spool(path=card, options=_options(ram_dir))
    assert reopened.next_seq == 4 and reopened.void is None
    # An older release, or write-behind turned off, finds everything on the card.
    reopened.close()
    plain = Spool(path=card)
    assert [m.seq for m in plain.read(start=0, end=None, limit=10)] == [2, 3]
    plain.close()


def test_a_ram_file_of_another_spool_is_set_aside(tmp_path: Path, ram_dir: Path) -> None:
    card = tmp_path / "spool.sqlite"
    spool = Spool(path=card, options=_options(ram_dir))
    spool.append_many([_message(i) for i in range(3)])
    spool._db.close()  # as if killed: the RAM file keeps 0-2
    for name in ("spool.sqlite", "spool.sqlite-wal", "spool.sqlite-shm"):
        (tmp_path / name).unlink(missing_ok=True)  # the card's spool wiped by hand
    fresh = Spool(path=card, options=_options(ram_dir))
    assert fresh.depth == 0 and fresh.next_seq == 0  # not someone else's messages
    ram = ram_path(card, _options(ram_dir))
    assert ram.with_name(ram.name + ".bad").exists()
    fresh.close()


def test_a_damaged_ram_file_counts_as_gone(tmp_path: Path, ram_dir: Path) -> None:
    card = tmp_path / "spool.sqlite"
    spool = Spool(path=card, options=_options(ram_dir))
    spool.append_many([_message(i) for i in range(3)])
    spool._db.close()
    ram = ram_path(card, _options(ram_dir))
    for suffix in ("-wal", "-shm"):
        ram.with_name(ram.name + suffix).unlink(missing_ok=True)
    ram.write_bytes(b"not a database" * 100)
    reopened = Spool(path=card, options=_options(ram_dir))
    # As after a power cut: resumes above the reservation (3 + _RESERVE), void from 0.
    assert reopened.next_seq == 3 + _RESERVE and reopened.void == (0, 2 + _RESERVE)
    reopened.close()


def test_the_numbering_reserves_ahead_on_the_card(tmp_path: Path, ram_dir: Path) -> None:
    card = tmp_path / "spool.sqlite"
    spool = Spool(path=card, options=_options(ram_dir))
    batch = 250
    for i in range(5):  # seqs 0..1249; reserved at the first batch: 250 + 1000 = 1250
        seqs = spool.append_many([_message(i * batch + j) for j in range(batch)])
        spool.remove_acked(upto=seqs[-1])
    assert _running_state(spool)["reserved"] == 250 + _RESERVE  # covers 0..1249: no second
    seqs = spool.append_many([_message(9000 + j) for j in range(batch)])  # 1250..1499
    assert seqs[0] == 1250
    assert _running_state(spool)["reserved"] == 1500 + _RESERVE == spool.reserved
    spool.close()


def test_a_full_spool_thins_on_the_card(tmp_path: Path, ram_dir: Path) -> None:
    card = tmp_path / "spool.sqlite"
    spool = Spool(path=card, options=_options(ram_dir, max_messages=100))
    for i in range(12):  # 120 messages, one a second: the 101st triggers the shrink
        spool.append_many([_message(i * 10_000 + j * 1000) for j in range(10)])
    # At 110 > 100: everything moved to the card, brought to 90 by thinning the oldest half.
    assert spool.depth <= 100 and spool.thinned > 0
    held = [m.seq for m in spool.read(start=0, end=None, limit=1000)]
    assert len(held) == spool.depth
    assert set(_on_card(spool)) <= set(held) and 0 in held  # the oldest kept, thinned after
    spool.close()


def test_a_running_spool_holds_the_card_and_a_stopped_one_is_read_as_one(
        tmp_path: Path, ram_dir: Path) -> None:
    card = tmp_path / "spool.sqlite"
    owner = Spool(path=card, options=_options(ram_dir))
    owner.append_many([_message(i) for i in range(3)])
    owner.flush()
    owner.flush()  # 0-2 on the card
    owner.append_many([_message(3)])  # 3 in RAM
    # No -shm file: the WAL index is in the process's memory (exclusive locking mode).
    assert not card.with_name(card.name + "-shm").exists()
    started = time.monotonic()
    with pytest.raises(SpoolBusy, match="held by a running gateway"):
        Spool(path=card, options=_options(ram_dir), owner=False)
    assert time.monotonic() - started < 3  # told at once, not after a long wait
    owner._db.close()  # as if killed: the lock goes with the process
    reader = Spool(path=card, options=_options(ram_dir), owner=False)
    assert reader.depth == 4 and reader.next_seq == 4
    assert [m.seq for m in reader.read(start=0, end=None, limit=10)] == [0, 1, 2, 3]
    reader.close()
