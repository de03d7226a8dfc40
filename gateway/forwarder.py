"""The forwarder: moves messages from the spool to the publisher, and forgets them once acked.

At most `in_flight` messages are handed to MQTT at a time (paho keeps them and re-sends them
after a reconnection); the rest wait on disk, so a week-long outage costs disk, not memory.

After a (re)connection, messages committed before it are the *backlog* and those committed
since are *live*: each round sends live messages first, then fills the window with the backlog
in sequence order. Live data keeps flowing while a long backlog drains behind it.

The spool is used from one worker thread only (SQLite calls never block the event loop, where
the device pollers run); the publisher reports acknowledgements from paho's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from gateway.publisher import Publisher
from gateway.spool import Spool, SpoolCounters, SpooledMessage

log = logging.getLogger(__name__)
T = TypeVar("T")

_DELETE_BATCH = 500
_DELETE_EVERY_S = 0.5


class Forwarder:
    """Commits messages to the spool and forwards them in order, live first."""

    def __init__(self, *, spool: Spool, publisher: Publisher, in_flight: int = 100) -> None:
        self.spool = spool
        self.publisher = publisher
        self.window = in_flight
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._in_flight: dict[int, int] = {}  # MQTT mid -> seq
        self._acked: set[int] = set()  # seqs acknowledged, not yet removed from the spool
        self._epoch = -1
        self._live_floor = 0
        self._live_next = 0
        self._backlog_next = 0
        self.counters = spool.counters

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def commit(self, *, topic: str, device: str, ts: int,
                     encode: Callable[[int], bytes], mono_ms: int | None = None) -> int:
        """Commit one message to disk (it is safe once this returns); returns its seq."""
        spool = self.spool

        def append() -> tuple[int, SpoolCounters]:
            seq = spool.append(topic=topic, device=device, ts=ts, encode=encode,
                               mono_ms=mono_ms)
            return seq, spool.counters

        seq, self.counters = await self._run(append)
        self._wake.set()
        return seq

    async def restamp(self, *, first_seq: int, offset_ms: int, delta_ms: int) -> int:
        """Correct spooled messages not yet handed to MQTT (see `Spool.restamp`)."""
        busy = set(self._in_flight.values()) | self._acked
        spool = self.spool
        return await self._run(lambda: spool.restamp(first_seq=first_seq, offset_ms=offset_ms,
                                                     delta_ms=delta_ms, skip=busy))

    def acked(self, mid: int) -> None:
        """The broker acknowledged `mid`. Called from paho's thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._on_ack, mid)

    def _on_ack(self, mid: int) -> None:
        seq = self._in_flight.pop(mid, None)
        if seq is not None:  # else: a status message, which is not spooled
            self._acked.add(seq)
            self._wake.set()

    @property
    def depth(self) -> int:
        """Messages not yet acknowledged by the broker."""
        return max(0, self.counters.depth - len(self._acked))

    async def run(self, stop: asyncio.Event) -> None:
        """Forward until `stop`; then remove what was acknowledged and close the spool."""
        self._loop = asyncio.get_running_loop()
        last_delete = time.monotonic()
        try:
            while not stop.is_set():
                self._wake.clear()
                now = time.monotonic()
                if self._acked and (len(self._acked) >= _DELETE_BATCH
                                    or now - last_delete >= _DELETE_EVERY_S):
                    await self._remove_acked()
                    last_delete = now
                if self.publisher.connected.is_set():
                    await self._send()
                # Woken by a commit or an ack; the timeout bounds the delay of batched deletes
                # and notices a reconnection.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=_DELETE_EVERY_S)
        finally:
            await self._remove_acked()
            await self._run(self.spool.close)
            self._executor.shutdown(wait=True)

    async def _remove_acked(self) -> None:
        if not self._acked:
            return
        done, self._acked = self._acked, set()
        spool = self.spool

        def remove() -> SpoolCounters:
            spool.remove(done)
            return spool.counters

        self.counters = await self._run(remove)

    async def _send(self) -> None:
        epoch = self.publisher.connections
        if epoch != self._epoch:
            # A new connection: paho re-sends what it holds; everything committed so far and
            # not held by paho is backlog, read again from the start of the spool.
            self._epoch = epoch
            self._live_floor = self._live_next = self.counters.next_seq
            self._backlog_next = 0
            if self.counters.depth:
                log.info("connected with %d message(s) in the spool: replaying",
                         self.counters.depth)
        room = self.window - len(self._in_flight)
        if room <= 0:
            return
        busy = set(self._in_flight.values()) | self._acked
        spool = self.spool
        live_next, floor, backlog_next = self._live_next, self._live_floor, self._backlog_next
        wanted = room + len(busy)

        def read() -> tuple[list[SpooledMessage], list[SpooledMessage]]:
            live = spool.read(start=live_next, end=None, limit=wanted)
            backlog = spool.read(start=backlog_next, end=floor, limit=wanted)
            return live, backlog

        live, backlog = await self._run(read)
        for message in [m for m in live if m.seq not in busy][:room]:
            self._publish(message)
            self._live_next = message.seq + 1
            room -= 1
        for message in [m for m in backlog if m.seq not in busy][:room]:
            self._publish(message)
            self._backlog_next = message.seq + 1

    def _publish(self, message: SpooledMessage) -> None:
        mid = self.publisher.publish_raw(message.topic, message.payload)
        self._in_flight[mid] = message.seq
