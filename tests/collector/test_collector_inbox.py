"""The inbox between paho's thread and the writers: batches by points, by messages and by age."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from collector.inbox import Inbox


@dataclass(frozen=True)
class Message:
    id: int
    points: int = 10


def _inbox(*, batch_points: int = 100, batch_messages: int = 1000, flush_interval_s: float = 5.0,
           capacity: int = 10_000) -> Inbox[Message]:
    return Inbox(batch_points=batch_points, batch_messages=batch_messages,
                 flush_interval_s=flush_interval_s, capacity=capacity)


def test_a_full_batch_of_points_goes_at_once_and_no_more() -> None:
    inbox = _inbox(batch_points=100)
    for i in range(15):
        inbox.put(Message(i))
    started = time.monotonic()
    batch = inbox.take()
    assert time.monotonic() - started < 1.0  # not the 5 s flush interval
    assert [m.id for m in batch] == list(range(10))
    assert len(inbox) == 5


def test_a_full_batch_of_messages_goes_at_once() -> None:
    """Flow control may allow fewer messages than a batch of points needs."""
    inbox = _inbox(batch_points=10**6, batch_messages=4)
    for i in range(6):
        inbox.put(Message(i))
    started = time.monotonic()
    assert [m.id for m in inbox.take()] == [0, 1, 2, 3]
    assert time.monotonic() - started < 1.0


def test_a_partial_batch_waits_for_the_flush_interval_from_its_oldest_message() -> None:
    inbox = _inbox(flush_interval_s=0.4)
    arrived = time.monotonic()
    inbox.put(Message(1))
    time.sleep(0.2)
    inbox.put(Message(2))
    batch = inbox.take()
    waited = time.monotonic() - arrived
    assert [m.id for m in batch] == [1, 2]
    assert 0.35 <= waited < 1.5  # the oldest's age, not the newest's (0.6 s)


def test_a_writer_waiting_on_an_empty_inbox_is_woken_by_the_first_message() -> None:
    inbox = _inbox(flush_interval_s=0.3)
    taken: list[list[Message]] = []
    writer = threading.Thread(target=lambda: taken.append(inbox.take()))
    writer.start()
    time.sleep(0.1)
    put_at = time.monotonic()
    inbox.put(Message(7))
    writer.join(timeout=5)
    assert taken == [[Message(7)]]
    assert time.monotonic() - put_at >= 0.25  # then its own flush timer ran


def test_an_empty_inbox_gives_an_empty_batch_after_the_interval() -> None:
    inbox = _inbox(flush_interval_s=0.1)
    started = time.monotonic()
    assert inbox.take() == []
    assert 0.08 <= time.monotonic() - started < 2


def test_put_waits_while_the_inbox_is_full() -> None:
    inbox = _inbox(batch_points=10, capacity=2)
    inbox.put(Message(1))
    inbox.put(Message(2))
    third = threading.Thread(target=inbox.put, args=(Message(3),))
    third.start()
    third.join(timeout=0.3)
    assert third.is_alive() and len(inbox) == 2
    assert inbox.take() == [Message(1)]
    third.join(timeout=5)
    assert not third.is_alive()
    assert [m.id for m in inbox.take() + inbox.take()] == [2, 3]


def test_every_message_reaches_exactly_one_writer() -> None:
    inbox = _inbox(batch_points=500, flush_interval_s=0.05, capacity=300)
    taken: list[list[int]] = [[], [], []]
    stop = threading.Event()

    def write(out: list[int]) -> None:
        while not stop.is_set() or len(inbox):
            out.extend(m.id for m in inbox.take())

    writers = [threading.Thread(target=write, args=(out,)) for out in taken]
    for writer in writers:
        writer.start()
    for i in range(20_000):
        inbox.put(Message(i, points=1 + i % 7))
    stop.set()
    for writer in writers:
        writer.join(timeout=30)
    ids = [i for out in taken for i in out]
    assert sorted(ids) == list(range(20_000))
