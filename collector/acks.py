"""End-to-end acknowledgements: per gateway, what is stored in InfluxDB, told back to it.

The gateway keeps every spooled message until the collector says it is stored (gateway/spool.py):
a broker's PUBACK only means the broker has it, and a broker crash loses what it had not saved.
So, per gateway, the collector keeps

- a **watermark** `upto`: every seq <= upto is stored, or no longer held by the gateway (its
  status's `buffer_floor`: below it everything was acknowledged before, or thinned or dropped
  by a full spool, so the watermark may pass the holes that thinning leaves; its status's
  `buffer_void`: numbers a power cut left unaccounted for, which it holds none of);
- the **stored intervals** above it: after an outage the gateway sends live messages first and
  its backlog behind them, so for a while the stored numbers are not contiguous (a void range
  counts as stored: the gateway has nothing to delete there, and the watermark passes it once
  everything below is stored). At most
  `max_intervals` are kept, the highest (the newest, which the gateway has not heard of yet);
  a gateway that missed an older one sends those messages again, and InfluxDB's idempotent
  writes absorb it.

and publishes it, retained, on `dynamo/v1/{site}/ack/{gateway}` at most every `interval_s`
(one small message per gateway per interval whatever the message rate). The ack only ever
claims what a confirmed write stored: numbers reach `stored` after InfluxDB confirmed their batch.

A **reset** of the gateway's numbering (a wiped spool, collector.sequence) starts the gateway's
state afresh under a new *epoch*; stored numbers of the previous epoch still in the write
pipeline are then ignored, never mixed with the new numbering.

At start the collector reads its own retained acks back (`seed`), so a restart does not make
every gateway send its spool again. Shared subscriptions split a gateway's messages between
collectors, none of which sees them all: the service publishes no ack then (docs/collector.md).
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from telemetry.payload import Ack, encode
from telemetry.topics import ack_topic

log = logging.getLogger(__name__)

# (site, gateway, epoch, seq) of one stored telemetry message
Stored = tuple[str, str, int, int]


@dataclass(slots=True)
class _State:
    epoch: int = 0
    upto: int = -1
    # Disjoint, non-adjacent inclusive intervals above upto + 1, in increasing order.
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    dirty: bool = False

    def add(self, seq: int) -> None:
        if seq <= self.upto:
            # Sent again: the gateway has not heard of it (an ack lost with a broker's crash)
            self.dirty = True
            return
        if seq == self.upto + 1:
            self.upto = seq
            self._absorb()
            return
        i = bisect_left(self.starts, seq)
        if i > 0 and self.ends[i - 1] >= seq - 1:  # inside or just after the previous one
            if self.ends[i - 1] < seq:
                self.ends[i - 1] = seq
            if i < len(self.starts) and self.starts[i] == seq + 1:  # bridges two
                self.ends[i - 1] = self.ends[i]
                del self.starts[i], self.ends[i]
        elif i < len(self.starts) and self.starts[i] == seq + 1:
            self.starts[i] = seq
        elif i < len(self.starts) and self.starts[i] == seq:
            pass
        else:
            self.starts.insert(i, seq)
            self.ends.insert(i, seq)
        self.dirty = True

    def add_interval(self, first: int, last: int) -> None:
        if last <= self.upto:
            return
        pairs = sorted([*zip(self.starts, self.ends, strict=True),
                        (max(first, self.upto + 1), last)])
        self.starts, self.ends = [], []
        for start, end in pairs:
            if self.ends and start <= self.ends[-1] + 1:
                self.ends[-1] = max(self.ends[-1], end)
            else:
                self.starts.append(start)
                self.ends.append(end)
        self._absorb()

    def covers(self, first: int, last: int) -> bool:
        """Whether every number of [first, last] is at or below the watermark or stored."""
        if last <= self.upto:
            return True
        i = bisect_right(self.starts, max(first, self.upto + 1)) - 1
        return i >= 0 and self.ends[i] >= last  # disjoint, non-adjacent: one holds it all

    def raise_to(self, upto: int) -> None:
        if upto <= self.upto:
            return
        self.upto = upto
        while self.starts and self.ends[0] <= upto:
            del self.starts[0], self.ends[0]
        self._absorb()

    def _absorb(self) -> None:
        """The watermark moved: swallow the intervals it now touches."""
        self.dirty = True
        while self.starts and self.starts[0] <= self.upto + 1:
            self.upto = max(self.upto, self.ends[0])
            del self.starts[0], self.ends[0]

    def bound(self, max_intervals: int) -> None:
        excess = len(self.starts) - max_intervals
        if excess > 0:
            del self.starts[:excess], self.ends[:excess]


class AckTracker:
    """What each gateway has stored end to end; thread-safe (paho's and the writers' threads).

    `publish(topic, payload)` sends one retained QoS 1 message (the collector's MQTT client);
    False when it cannot now (disconnected): the ack stays due and goes with the next flush.
    """

    def __init__(self, *, publish: Callable[[str, bytes], bool], interval_s: float = 0.2,
                 max_intervals: int = 256, clock: Callable[[], float] = time.time) -> None:
        if max_intervals < 1:
            raise ValueError("max_intervals must be at least 1")
        self._publish = publish
        self._interval_s = interval_s
        self._max_intervals = max_intervals
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str], _State] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="collector-acks", daemon=True)
        self.published = 0

    # -- what the collector learns ------------------------------------------------------------

    def epoch(self, site: str, gateway: str) -> int:
        """The gateway's current numbering epoch, to tag its messages with at receipt."""
        with self._lock:
            state = self._states.get((site, gateway))
            return 0 if state is None else state.epoch

    def reset(self, site: str, gateway: str) -> None:
        """The gateway restarted its numbering: forget what was stored under the old one."""
        with self._lock:
            old = self._states.get((site, gateway))
            self._states[(site, gateway)] = _State(epoch=(old.epoch + 1) if old else 1,
                                                   dirty=True)

    def stored(self, entries: Iterable[Stored]) -> None:
        """Messages InfluxDB confirmed (a writer thread, after the batch's write)."""
        with self._lock:
            for site, gateway, epoch, seq in entries:
                state = self._states.setdefault((site, gateway), _State())
                if epoch == state.epoch:
                    state.add(seq)
            for state in self._states.values():
                if state.dirty:
                    state.bound(self._max_intervals)

    def floor(self, site: str, gateway: str, floor: int) -> None:
        """The gateway's spool holds nothing below `floor` (its status's `buffer_floor`)."""
        with self._lock:
            self._states.setdefault((site, gateway), _State()).raise_to(floor - 1)

    def void(self, site: str, gateway: str, first: int, last: int) -> None:
        """The gateway holds none of [first, last] and will send none (its status's
        `buffer_void`: numbers a power cut left unaccounted for): settled like stored ones, as
        one interval whatever its length. Every later status repeats the range: once settled,
        it changes nothing and publishes nothing."""
        with self._lock:
            state = self._states.setdefault((site, gateway), _State())
            if not state.covers(first, last):
                state.add_interval(first, last)
                state.bound(self._max_intervals)

    def seed(self, ack: Ack) -> None:
        """One of our retained acks, read back at start: what was stored before the restart."""
        with self._lock:
            state = self._states.setdefault((ack.site, ack.gateway), _State())
            if state.epoch != 0:
                return  # the numbering restarted since: the old ack says nothing of the new one
            dirty = state.dirty
            state.raise_to(ack.upto)
            for first, last in ack.stored:
                state.add_interval(first, last)
            state.bound(self._max_intervals)
            state.dirty = dirty  # what the broker already holds need not be published again

    def republish(self) -> None:
        """Publish every ack again (a reconnection: the broker may have lost the last ones)."""
        with self._lock:
            for state in self._states.values():
                state.dirty = True

    def ack_of(self, site: str, gateway: str) -> Ack | None:
        """The acknowledgement the gateway would be told now (None if never heard of)."""
        with self._lock:
            state = self._states.get((site, gateway))
            return None if state is None else self._ack(site, gateway, state)

    # -- publishing ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Publish what is pending one last time, then stop."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.flush()

    def flush(self) -> int:
        """Publish the acks that changed since the last flush; returns how many."""
        with self._lock:
            due = [(site, gateway, self._ack(site, gateway, state))
                   for (site, gateway), state in self._states.items() if state.dirty]
            for key in [(site, gateway) for site, gateway, _ in due]:
                self._states[key].dirty = False
        sent = 0
        for site, gateway, ack in due:
            if self._publish(ack_topic(site, gateway), encode(ack)):
                sent += 1
                continue
            with self._lock:  # not now: still due (a newer state may have replaced it)
                self._states[(site, gateway)].dirty = True
        self.published += sent
        return sent

    def _ack(self, site: str, gateway: str, state: _State) -> Ack:
        return Ack(site=site, gateway=gateway, upto=state.upto,
                   stored=tuple(zip(state.starts, state.ends, strict=True)),
                   ts=int(self._clock() * 1000))

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.flush()
