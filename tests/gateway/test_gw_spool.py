"""The spool on a real SQLite file: sequence numbers, bound and thinning, removal."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.spool import Spool, SpoolError
from telemetry.site import SpoolOptions

MINUTE_MS = 60_000


def _append(spool: Spool, *, device: str = "meter", ts: int = 0) -> int:
    return spool.append(topic="dynamo/v1/test/test-gw/telemetry/rig", device=device, ts=ts,
                        encode=lambda seq: f'{{"seq": {seq}}}'.encode())


def test_sequence_numbers_survive_a_restart_even_when_the_spool_is_empty(tmp_path: Path) -> None:
    spool = Spool(path=tmp_path / "spool.sqlite")
    seqs = [_append(spool) for _ in range(5)]
    assert seqs == [0, 1, 2, 3, 4]
    spool.remove(seqs)
    assert spool.depth == 0
    spool.close()
    reopened = Spool(path=tmp_path / "spool.sqlite")
    assert _append(reopened) == 5  # never reused: a repeat would look like a redelivery
    assert reopened.depth == 1


def test_messages_come_back_in_order_with_their_payload(tmp_path: Path) -> None:
    spool = Spool(path=tmp_path / "spool.sqlite")
    for _ in range(10):
        _append(spool)
    spool.remove([2, 3])
    rows = spool.read(start=0, end=None, limit=5)
    assert [r.seq for r in rows] == [0, 1, 4, 5, 6]
    assert rows[2].payload == b'{"seq": 4}'
    assert [r.seq for r in spool.read(start=5, end=8, limit=100)] == [5, 6, 7]


def test_a_full_spool_thins_the_oldest_to_one_message_per_minute(tmp_path: Path) -> None:
    options = SpoolOptions(max_messages=1000)
    spool = Spool(path=tmp_path / "spool.sqlite", options=options)
    # Two devices, one message each per 6 s: ten per minute per device.
    for i in range(1001):
        _append(spool, device=f"dev{i % 2}", ts=1_763_000_000_000 + (i // 2) * 6000)
    assert spool.depth <= 900
    assert spool.thinned > 0 and spool.dropped == 0
    assert spool.depth + spool.thinned == 1001
    remaining = spool.read(start=0, end=None, limit=10_000)
    # The oldest half keeps every device, at one message per minute; the newest are intact.
    db = sqlite3.connect(tmp_path / "spool.sqlite")
    per_minute = db.execute(
        "SELECT device, ts / 60000, count(*) FROM messages WHERE seq < 500 "
        "GROUP BY device, ts / 60000").fetchall()
    assert per_minute and all(count == 1 for _, _, count in per_minute)
    assert {d for d, _, _ in per_minute} == {"dev0", "dev1"}
    assert [r.seq for r in remaining][-400:] == list(range(601, 1001))
    spool.close()
    # The counts are persisted: the status never forgets a loss.
    reopened = Spool(path=tmp_path / "spool.sqlite", options=options)
    assert (reopened.thinned, reopened.dropped) == (spool.thinned, 0)


def test_when_thinning_is_not_enough_the_oldest_are_dropped_and_counted(tmp_path: Path) -> None:
    # Every message in its own hour: nothing to thin, the bound still holds.
    spool = Spool(path=tmp_path / "spool.sqlite", options=SpoolOptions(max_messages=100))
    for i in range(250):
        _append(spool, ts=1_763_000_000_000 + i * 3_600_000)
    assert spool.depth <= 100
    assert spool.dropped > 0 and spool.thinned == 0
    assert spool.depth + spool.dropped == 250
    assert spool.read(start=0, end=None, limit=1000)[-1].seq == 249


def test_an_unusable_spool_file_is_a_typed_error(tmp_path: Path) -> None:
    bad = tmp_path / "spool.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SpoolError, match="spool"):
        Spool(path=bad)


def test_restamping_moves_only_what_the_wrong_clock_stamped(tmp_path: Path) -> None:
    spool = Spool(path=tmp_path / "spool.sqlite")
    day_ms = 86_400_000
    wrong, right = 1_763_000_000_000 - day_ms, 1_763_000_000_000  # wall − monotonic offsets

    def stamp(mono_ms: int, offset: int) -> int:
        ts = offset + mono_ms
        return spool.append(topic="t", device="m", ts=ts, mono_ms=mono_ms,
                            encode=lambda seq: f'{{"seq":{seq},"ts":{ts}}}'.encode())

    old = [stamp(1000 + i * 200, wrong) for i in range(5)]  # before NTP set the clock
    in_flight = old[-1]
    new = [stamp(2100 + i * 200, right) for i in range(3)]  # after, before it was noticed
    moved = spool.restamp(first_seq=old[0], offset_ms=wrong, delta_ms=day_ms, skip=[in_flight])
    assert moved == 4
    rows = {r.seq: r.payload for r in spool.read(start=0, end=None, limit=100)}
    assert rows[old[0]] == f'{{"seq":{old[0]},"ts":{right + 1000}}}'.encode()
    assert rows[in_flight] == f'{{"seq":{in_flight},"ts":{wrong + 1800}}}'.encode()
    assert rows[new[0]] == f'{{"seq":{new[0]},"ts":{right + 2100}}}'.encode()
