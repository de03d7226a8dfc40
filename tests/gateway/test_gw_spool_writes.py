"""The spool's SD-card economies keep its guarantees (docs/gateway.md, "SD-card writes"):
grouped commits, `next_seq` saved only when messages are deleted, deletions without their own
sync, 512-byte pages for new files. On a real SQLite file; bench/gateway/sdcard.py measures the
bytes."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from gateway.forwarder import Forwarder
from gateway.publisher import Publisher
from gateway.spool import Append, Spool
from telemetry.payload import Status
from telemetry.site import Broker

TOPIC = "dynamo/v1/test/test-gw/telemetry/rig"


def _message(ts: int = 0) -> Append:
    return Append(topic=TOPIC, device="meter", ts=ts,
                  encode=lambda seq: f'{{"seq": {seq}}}'.encode())


def test_a_spool_emptied_by_the_end_to_end_ack_keeps_its_numbering(tmp_path: Path) -> None:
    # The appends no longer save next_seq: the deletion that empties the spool must.
    spool = Spool(path=tmp_path / "spool.sqlite")
    assert spool.append_many([_message(i) for i in range(4)]) == [0, 1, 2, 3]
    assert spool.remove_acked(upto=3) == 4
    assert spool.depth == 0
    spool.close()
    reopened = Spool(path=tmp_path / "spool.sqlite")
    assert reopened.append(topic=TOPIC, device="meter", ts=9,
                           encode=lambda seq: b"{}") == 4  # 0..3 went: next is 4
    reopened.close()


def test_a_reopened_spool_numbers_after_its_highest_held_seq(tmp_path: Path) -> None:
    # Reopened with messages held, the highest seq gives the numbering (nothing saved it).
    spool = Spool(path=tmp_path / "spool.sqlite")
    spool.append_many([_message(i) for i in range(3)])
    spool.remove([0, 1])
    spool.close()
    reopened = Spool(path=tmp_path / "spool.sqlite")
    assert reopened.next_seq == 3  # seq 2 held: 2 + 1
    assert reopened.counters.floor == 2
    reopened.close()


def test_append_many_numbers_in_order_and_encodes_each_with_its_seq(tmp_path: Path) -> None:
    spool = Spool(path=tmp_path / "spool.sqlite")
    spool.append(topic=TOPIC, device="meter", ts=0, encode=lambda seq: b"{}")  # seq 0
    assert spool.append_many([_message(10), _message(11), _message(12)]) == [1, 2, 3]
    assert [m.payload for m in spool.read(start=1, end=None, limit=10)] == [
        b'{"seq": 1}', b'{"seq": 2}', b'{"seq": 3}']
    assert spool.append_many([]) == []
    assert spool.depth == 4 and spool.next_seq == 4
    spool.close()


def test_a_deletion_leaves_the_connection_syncing_every_commit(tmp_path: Path) -> None:
    # Deletions commit with synchronous=NORMAL; the appends after them must be FULL (2) again.
    spool = Spool(path=tmp_path / "spool.sqlite")
    spool.append_many([_message(i) for i in range(3)])
    spool.remove_acked(upto=1)
    assert spool._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    spool.remove([2])
    assert spool._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    spool.close()


def test_new_spool_files_use_512_byte_pages_and_old_ones_keep_theirs(tmp_path: Path) -> None:
    Spool(path=tmp_path / "new.sqlite").close()
    old = tmp_path / "old.sqlite"
    db = sqlite3.connect(old)
    db.execute("PRAGMA journal_mode=WAL")  # created with SQLite's default, 4096
    db.close()
    spool = Spool(path=old)
    spool.append_many([_message(1)])
    spool.close()
    for path, expected in ((tmp_path / "new.sqlite", 512), (old, 4096)):
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA page_size").fetchone()[0] == expected, path.name
        db.close()


class _CountingSpool(Spool):
    """Records the size of each committed group (the spool itself does the work)."""

    groups: list[int]

    def append_many(self, messages: Sequence[Append]) -> list[int]:
        self.groups.append(len(messages))
        return super().append_many(messages)


def test_commits_of_one_poll_cycle_share_one_transaction(tmp_path: Path) -> None:
    spool = _CountingSpool(path=tmp_path / "spool.sqlite")
    spool.groups = []
    publisher = Publisher(broker=Broker(host="127.0.0.1", port=1), site="test",
                          gateway="test-gw",
                          birth=lambda: Status(site="test", gateway="test-gw", state="online",
                                               ts=1_800_000_000_000))
    forwarder = Forwarder(spool=spool, publisher=publisher)  # never started: no broker needed

    async def cycle() -> list[int]:
        # Three devices answering at the same instant, as the aligned pollers do.
        return list(await asyncio.gather(*(
            forwarder.commit(topic=TOPIC, device=f"d{i}", ts=i, encode=lambda s: b"{}")
            for i in range(3))))

    async def scenario() -> tuple[list[int], list[int]]:
        first = await cycle()
        await asyncio.sleep(0.2)  # the next cycle, well after the grouping window
        return first, await cycle()

    first, second = asyncio.run(scenario())
    assert first == [0, 1, 2] and second == [3, 4, 5]
    assert spool.groups == [3, 3]  # two transactions, not six
    spool.close()
