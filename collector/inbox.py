"""The inbox: received messages waiting for their write, handed to the writers a batch at a time.

paho's thread puts one message at a time; a writer takes a batch once `batch_points` points or
`batch_messages` messages wait, or once the oldest waiting message has waited
`flush_interval_s`. A writer is woken only for that (the first message of a batch starts its
timer), not once per message as with a plain queue: with small messages, a wake-up per message
cost more than decoding the message.

`batch_messages` matters when flow control allows fewer messages than a batch of points needs
(small messages, a small Receive Maximum): the broker sends nothing more until we acknowledge,
so waiting for more points would only wait for the timer.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, Protocol, TypeVar


class _Counted(Protocol):
    @property
    def points(self) -> int: ...


T = TypeVar("T", bound=_Counted)


class Inbox(Generic[T]):
    """A bounded, batching hand-over between one producer thread and writer threads."""

    def __init__(self, *, batch_points: int, batch_messages: int, flush_interval_s: float,
                 capacity: int) -> None:
        self._batch_points = batch_points
        self._batch_messages = batch_messages
        self._flush_interval_s = flush_interval_s
        self._capacity = capacity
        self._items: deque[tuple[float, T]] = deque()  # (arrival, monotonic; item)
        self._points = 0
        lock = threading.Lock()
        self._ready = threading.Condition(lock)  # a batch is due, or a timer must start
        self._room = threading.Condition(lock)  # below capacity again

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        """Add a message; waits only while `capacity` messages wait (flow control keeps the
        broker from sending that many: the wait is a last resort, and TCP's backpressure)."""
        with self._ready:
            while len(self._items) >= self._capacity:
                self._room.wait()
            if not self._items:
                self._ready.notify()
            self._items.append((time.monotonic(), item))
            self._points += item.points
            if self._full():
                self._ready.notify()

    def take(self) -> list[T]:
        """The next batch, waiting at most `flush_interval_s` for one; empty if none came."""
        with self._ready:
            if not self._items:
                self._ready.wait(self._flush_interval_s)
            while self._items and not self._full():
                due = self._items[0][0] + self._flush_interval_s - time.monotonic()
                if due <= 0:
                    break
                self._ready.wait(due)
            batch: list[T] = []
            points = 0
            while self._items and points < self._batch_points \
                    and len(batch) < self._batch_messages:
                _arrived, item = self._items.popleft()
                batch.append(item)
                points += item.points
            self._points -= points
            if self._full():
                self._ready.notify()  # another writer may take the next batch now
            if batch:
                self._room.notify_all()
            return batch

    def _full(self) -> bool:
        return self._points >= self._batch_points or len(self._items) >= self._batch_messages
