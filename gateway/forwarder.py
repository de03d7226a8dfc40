"""The forwarder: moves messages from the spool to the publisher, and forgets them once stored.

At most `in_flight` messages are handed to MQTT at a time (paho keeps them and re-sends them
after a reconnection); the rest wait on disk, so a week-long outage costs disk, not memory.
The broker's PUBACK frees a place in that window and nothing more: a message leaves the spool
only when the collector's end-to-end acknowledgement (collector/acks.py) says it is stored in
InfluxDB. A broker that crashes with messages it had accepted and not saved therefore loses
nothing: they are still in the spool.

After a (re)connection, messages committed before it are the *backlog* and those committed
since are *live*: each round sends live messages first, then fills the window with the backlog
in sequence order. The backlog is everything the spool holds, so a reconnection sends again
what the acknowledgement does not cover yet (the broker may have lost it); the collector's
idempotent writes absorb what it had after all. Live data keeps flowing while a long backlog
drains behind it.

A message the broker accepted and the collector never got (published before the collector's
session existed, or lost by a broker that crashed without dropping the connection) would wait for
the next reconnection: every `resend_after_s` the forwarder looks whether messages sent before its
last look are still in the spool although later ones were stored since (MQTT keeps one client's
messages in order: those are lost, not late), and if so replays the spool as after a
reconnection.

A message the broker refuses (MQTT 5 reason code >= 0x80, e.g. 0x87 not authorised by its
ACL) stays in the spool, marked with the reason, counted and shown in the status; it is tried
again every `refused_retry_s` (an ACL is fixed and reloaded without any reconnection).

The spool is used from one worker thread only (SQLite calls never block the event loop, where
the device pollers run); the publisher reports PUBACKs and acknowledgements from paho's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from gateway.publisher import Publisher
from gateway.spool import Append, Spool, SpoolCounters, SpooledMessage
from telemetry.payload import Ack

log = logging.getLogger(__name__)
T = TypeVar("T")

_WAKE_EVERY_S = 0.5
_DELETE_BATCH = 500
# Commits this close together share a transaction: devices polled at one aligned instant.
_GROUP_S = 0.01


class _Spans:
    """The seqs handed to MQTT by this process (to leave alone when re-stamping): a few
    half-open ranges per connection, not one entry per message."""

    def __init__(self) -> None:
        self.closed: list[tuple[int, int]] = []
        self.open: list[tuple[int, int]] = []

    def __contains__(self, seq: object) -> bool:
        return isinstance(seq, int) and any(lo <= seq < hi for lo, hi in
                                            [*self.closed, *self.open])


class Forwarder:
    """Commits messages to the spool and forwards them in order, live first."""

    def __init__(self, *, spool: Spool, publisher: Publisher, in_flight: int = 100,
                 refused_retry_s: float = 30.0, end_to_end: bool = True,
                 resend_after_s: float = 30.0) -> None:
        self.spool = spool
        # False (`spool.acknowledgement: broker`): the broker's PUBACK removes a message, as
        # for collectors sharing the load, which publish no end-to-end ack.
        self.end_to_end = end_to_end
        self._accepted: list[int] = []  # broker mode: PUBACKed, to remove
        self.publisher = publisher
        self.window = in_flight
        self.refused_retry_s = refused_retry_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._in_flight: dict[int, int] = {}  # MQTT mid -> seq
        self._refused: dict[int, str] = spool.refused()  # seq -> the broker's reason
        self._marks: dict[int, str | None] = {}  # refusals (reason) and acceptances (None) to save
        self._acks: list[Ack] = []  # end-to-end acknowledgements not applied yet
        self._next_retry = time.monotonic() + refused_retry_s
        self._epoch = -1
        self._live_floor = 0
        self._live_next = 0
        self._backlog_next = 0
        self._sent = _Spans()
        self.resend_after_s = resend_after_s
        self._look: tuple[int, int] | None = None  # (epoch, live cursor) at the last look
        self._next_look = time.monotonic() + resend_after_s
        self._stored_max = -1  # the highest seq any acknowledgement covered
        # Write-behind (gateway/spool.py): what is not acknowledged goes to the card this often.
        self._flush_every_s = spool.options.write_behind_s / 2
        self._next_flush = time.monotonic() + self._flush_every_s
        self.replays = 0  # replays for messages the collector never got
        self.stored_upto: int | None = None  # the last end-to-end watermark applied
        self.ignored_acks = 0  # acknowledgements of a numbering that is not this spool's
        self.counters = spool.counters
        # Messages waiting to be committed together, and the task that will (`commit`).
        self._group: list[tuple[Append, asyncio.Future[int]]] = []
        self._grouping: asyncio.Task[None] | None = None
        # time.monotonic() at the start of the last loop iteration: the watchdog's heartbeat.
        self.heartbeat = time.monotonic()

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def commit(self, *, topic: str, device: str, ts: int,
                     encode: Callable[[int], bytes], mono_ms: int | None = None) -> int:
        """Commit one message to disk (it is safe once this returns); returns its seq.

        Messages committed within `_GROUP_S` of each other (one poll cycle's devices, aligned
        on the same instant) share one transaction: one sync of the SD card for them all
        (docs/gateway.md, "SD-card writes")."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._group.append((Append(topic=topic, device=device, ts=ts, encode=encode,
                                   mono_ms=mono_ms), future))
        if self._grouping is None:
            self._grouping = asyncio.create_task(self._commit_group(), name="spool-commit")
        # Shielded: a poll cancelled meanwhile does not take its message out of the group.
        seq = await asyncio.shield(future)
        self._wake.set()
        return seq

    async def _commit_group(self) -> None:
        await asyncio.sleep(_GROUP_S)
        group, self._group, self._grouping = self._group, [], None
        spool = self.spool

        def append() -> tuple[list[int], SpoolCounters]:
            return spool.append_many([message for message, _ in group]), spool.counters

        try:
            seqs, self.counters = await self._run(append)
        except Exception as exc:  # SpoolError: each committer reports it
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), seq in zip(group, seqs, strict=True):
            if not future.done():
                future.set_result(seq)

    async def restamp(self, *, first_seq: int, offset_ms: int, delta_ms: int) -> int:
        """Correct spooled messages never handed to MQTT (see `Spool.restamp`): a message sent
        once must be sent again identical, or InfluxDB would get it twice at two times."""
        spool, sent = self.spool, self._sent
        return await self._run(lambda: spool.restamp(first_seq=first_seq, offset_ms=offset_ms,
                                                     delta_ms=delta_ms, skip=sent))

    # -- from paho's thread ---------------------------------------------------------------------

    def acked(self, mid: int) -> None:
        """The broker accepted `mid` (PUBACK): a place in the window is free."""
        self._call(self._on_puback, mid, None)

    def refused(self, mid: int, reason: str) -> None:
        """The broker refused `mid` (reason code >= 0x80): the message stays, marked."""
        self._call(self._on_puback, mid, reason)

    def stored(self, ack: Ack) -> None:
        """The collector's end-to-end acknowledgement."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._on_stored, ack)

    def _call(self, fn: Callable[[int, str | None], None], mid: int, reason: str | None) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(fn, mid, reason)

    # -- on the event loop ------------------------------------------------------------------------

    def _on_puback(self, mid: int, reason: str | None) -> None:
        seq = self._in_flight.pop(mid, None)
        if seq is None:  # a status message, which is not spooled
            return
        if reason is not None:
            self._refused[seq] = reason
            self._marks[seq] = reason
            now = time.monotonic()
            if self._next_retry <= now:
                self._next_retry = now + self.refused_retry_s
        else:
            if seq in self._refused:
                del self._refused[seq]
                self._marks[seq] = None
            if not self.end_to_end:
                self._accepted.append(seq)
        self._wake.set()

    def _on_stored(self, ack: Ack) -> None:
        if self.end_to_end:
            self._acks.append(ack)
        self._wake.set()

    @property
    def depth(self) -> int:
        """Messages not yet acknowledged end to end."""
        return self.counters.depth

    def refused_by_reason(self) -> dict[str, int]:
        """Messages held because the broker refused them, by reason."""
        return dict(Counter(list(self._refused.values())))

    async def run(self, stop: asyncio.Event) -> None:
        """Forward until `stop`; then apply what was acknowledged and close the spool."""
        self._loop = asyncio.get_running_loop()
        last_apply = time.monotonic()
        try:
            while not stop.is_set():
                self.heartbeat = time.monotonic()
                self._wake.clear()
                now = time.monotonic()
                if self._acks or self._marks or (self._accepted and (
                        len(self._accepted) >= _DELETE_BATCH
                        or now - last_apply >= _WAKE_EVERY_S)):
                    await self._apply()  # broker mode: deletions batched, as PUBACKs stream
                    last_apply = now
                if self._flush_every_s and time.monotonic() >= self._next_flush:
                    await self._flush()
                if self.publisher.connected.is_set():
                    await self._send()
                    if self._refused and time.monotonic() >= self._next_retry:
                        await self._retry_refused()
                    if self.end_to_end and time.monotonic() >= self._next_look:
                        await self._look_for_lost()
                # Woken by a commit, a PUBACK or an acknowledgement; the timeout notices a
                # reconnection and the time to retry refused messages.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=_WAKE_EVERY_S)
        finally:
            while self._grouping is not None:  # commits still gathering: on disk first
                await self._grouping
            if self.publisher.connected.is_set():
                # A clean stop still hands the broker what the last polls committed (spooled
                # until acknowledged, as always), rather than leaving it to the next start.
                await self._send()
            await self._apply()
            await self._run(self.spool.close)
            self._executor.shutdown(wait=True)

    async def _apply(self) -> None:
        """Save refusal marks and forget what the collector stored."""
        next_seq = self.counters.next_seq
        acks = []
        for ack in self._acks:
            if ack.upto >= next_seq or any(last >= next_seq for _, last in ack.stored):
                # Numbers this spool never gave: an ack of an earlier numbering (a wiped spool)
                self.ignored_acks += 1
                log.warning("ignoring an end-to-end ack up to %d: this spool's next seq is %d",
                            ack.upto, next_seq)
                continue
            acks.append(ack)
        self._acks = []
        marks, self._marks = self._marks, {}
        accepted, self._accepted = self._accepted, []
        for ack in acks:
            self.stored_upto = max(ack.upto, self.stored_upto if self.stored_upto is not None
                                   else -1)
            self._stored_max = max(self._stored_max, ack.upto,
                                   *(last for _, last in ack.stored))
            for seq in [s for s in self._refused if _covers(ack, s)]:
                del self._refused[seq]
        if not acks and not marks and not accepted:
            return
        spool = self.spool

        def apply() -> SpoolCounters:
            spool.mark_refused(marks)
            spool.remove(accepted)
            for ack in acks:
                spool.remove_acked(upto=ack.upto, stored=ack.stored)
            return spool.counters

        self.counters = await self._run(apply)

    async def _flush(self) -> None:
        """Write-behind: move what the collector has not acknowledged to the card."""
        self._next_flush = time.monotonic() + self._flush_every_s
        spool = self.spool

        def flush() -> SpoolCounters:
            spool.flush()
            return spool.counters

        self.counters = await self._run(flush)

    async def _send(self) -> None:
        epoch = self.publisher.connections
        if epoch != self._epoch:
            # A new connection: paho re-sends what it holds; everything else the spool holds is
            # backlog, read again from its start: the watermark does not cover it yet.
            self._epoch = epoch
            self._sent.closed.extend(self._sent.open)
            self._live_floor = self._live_next = self.counters.next_seq
            self._backlog_next = 0
            self._sent.open = [(0, 0), (self._live_floor, self._live_floor)]
            if self.counters.depth:
                log.info("connected with %d message(s) in the spool: replaying",
                         self.counters.depth)
        room = self.window - len(self._in_flight)
        if room <= 0:
            return
        busy = set(self._in_flight.values())
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
        self._sent.open = [(0, self._backlog_next), (self._live_floor, self._live_next)]

    async def _look_for_lost(self) -> None:
        """Replay the spool when messages sent before the last look are still held while a
        later one was stored since: the broker accepted them and the collector never got them.
        (Refused messages are held too, but have their own retry.)"""
        self._next_look = time.monotonic() + self.resend_after_s
        look, self._look = self._look, (self._epoch, self._live_next)
        if look is None or look[0] != self._epoch:
            return  # a reconnection since: its replay covers them
        if self._stored_max < look[1] or self.counters.floor >= look[1]:
            return
        spool, refused = self.spool, set(self._refused)
        held = await self._run(lambda: spool.read(start=0, end=look[1],
                                                  limit=len(refused) + 1))
        if any(m.seq not in refused for m in held):
            log.warning("messages accepted by the broker never reached the collector: replaying "
                        "the spool from seq %d", self.counters.floor)
            self.replays += 1
            self._sent.closed.extend(self._sent.open)
            self._live_floor = self._live_next
            self._backlog_next = 0
            self._look = None

    async def _retry_refused(self) -> None:
        """Send refused messages again (the broker's ACL may have been fixed since)."""
        self._next_retry = time.monotonic() + self.refused_retry_s
        busy = set(self._in_flight.values())
        room = self.window - len(self._in_flight)
        seqs = sorted(s for s in self._refused if s not in busy)[:max(0, room)]
        if not seqs:
            return
        log.info("sending %d refused message(s) again", len(seqs))
        spool = self.spool
        for message in await self._run(lambda: spool.get(seqs)):
            self._publish(message)

    def _publish(self, message: SpooledMessage) -> None:
        mid = self.publisher.publish_raw(message.topic, message.payload)
        self._in_flight[mid] = message.seq


def _covers(ack: Ack, seq: int) -> bool:
    return seq <= ack.upto or any(first <= seq <= last for first, last in ack.stored)
