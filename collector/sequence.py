"""Per-gateway sequence tracking: which messages are missing, which arrive late, which twice.

Each gateway numbers its telemetry messages +1 per message and keeps the number in its spool,
so the numbering survives restarts (docs/mqtt.md, gateway/spool.py). After an outage the gateway
sends live messages first and its spooled backlog after, in order, behind them
(gateway/forwarder.py): the collector sees a jump forward (a **gap**) and then, for minutes or
hours, the gap's numbers arriving **late**. A gap is a loss only if its numbers never come.

The tracker therefore keeps, per gateway, the highest number seen and the numbers still
*missing*, as intervals: one per gap however long, split as a backlog thinned by a full spool
fills it in part. Numbers between the lowest remembered one (the *floor*) and the highest that
are not missing were received, so a repeat is recognised at any distance. Missing numbers are
given up as **lost** when their gap has stayed open longer than `horizon_s`, when a gateway has
more than `max_gaps` separate intervals open (the lowest go first: a backlog arrives in order,
so those are behind it), and at a reset. Memory is bounded by `max_gaps` per gateway.

A **reset** (the numbering restarted: a wiped spool, whose numbering starts again at 0) is a
number below the highest that comes with a timestamp newer than any seen from the gateway —
late and repeated messages are older. Timestamps of one gateway's devices may cross by a poll's
duration, hence the slack, except for number 0: only a fresh spool sends a new message 0.

A **void** range comes from the gateway's status (`buffer_void`), not from a message: after a
power cut a write-behind spool cannot know the last number it used, resumes at a reserved one
and announces the numbers it cannot account for (gateway/spool.py). None of them will be sent
any more. Numbers above the highest seen are first a gap, exactly as the message after the range
would show (so the counts do not depend on which comes first, the status or that message), and
the highest moves up to the range's end; then the range's missing numbers are settled as `void`
— not `lost`: most were never used. Numbers of the range already received stay received;
numbers below it stay missing (the gateway still holds them). Every later status repeats the
range: applying it again finds nothing to settle. A voided number that arrives after all (a
message the broker had queued before the cut) is stored like any other and reported a `repeat`:
the void settled its number, and the counts stay exact (numbers awaited = gap − late − lost −
void); such a number is counted both void and repeat. It is never taken for a reset (numbers of
the last void range never are), nor is a queued message below the range, when the gateway's
clock is right: the void counts as a message at the status's time.

Only meaningful when one collector sees all of a gateway's messages: with a shared
subscription each member sees a share, so the service turns tracking off.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class SequenceEvent(StrEnum):
    GAP = "gap"  # numbers skipped: missing from now on, until they arrive late or are given up
    LATE = "late"  # a missing number arrived: fills (part of) a gap, e.g. a replayed backlog
    LOST = "lost"  # missing numbers given up: gap open too long, too many gaps, or a reset
    REPEAT = "repeat"  # a number already received: a redelivery
    RESET = "reset"  # the gateway restarted its numbering (a wiped spool)
    STALE = "stale"  # below the tracker's floor: from before it first heard the gateway, or lost
    # numbers a gateway's power cut left unaccounted for (lost with the cut or never used): a
    # status's `buffer_void`, settled so that they are neither awaited nor counted lost
    VOID = "void"


@dataclass(frozen=True, slots=True)
class Observation:
    """One event a message revealed: its kind, the message's number, how many numbers."""

    kind: SequenceEvent
    seq: int
    count: int


@dataclass(slots=True)
class _Gateway:
    highest: int
    floor: int  # the lowest number the tracker still knows about; below it, nothing is known
    newest_ts: int  # the newest gateway timestamp seen (ms), for telling a reset
    # The timestamp (ms) of the message that revealed the last reset: a status older than it
    # speaks of the previous numbering. None: no reset seen.
    reset_ts: int | None = None
    # The last void range applied (every later status repeats it): a fast way out, and bounded.
    voided: tuple[int, int] | None = None
    # Missing numbers: disjoint inclusive intervals [starts[i], ends[i]], in increasing order,
    # opened at opened_s[i] (monotonic). Gaps open above everything, so opened_s increases too.
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    opened_s: list[float] = field(default_factory=list)
    missing: int = 0  # numbers in the intervals


class SequenceTracker:
    """Classifies each message's sequence number; not thread-safe (one caller: paho's thread)."""

    def __init__(self, *, max_gaps: int = 10_000, horizon_s: float = 86_400.0,
                 reset_slack_ms: int = 60_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_gaps < 1:
            raise ValueError("max_gaps must be at least 1")
        self._max_gaps = max_gaps
        self._horizon_s = horizon_s
        self._reset_slack_ms = reset_slack_ms
        self._clock = clock
        self._gateways: dict[tuple[str, str], _Gateway] = {}

    @property
    def missing(self) -> int:
        """Numbers currently missing (open gaps), over every gateway."""
        return sum(state.missing for state in self._gateways.values())

    def missing_of(self, *, site: str, gateway: str) -> int:
        """Numbers currently missing from one gateway's sequence."""
        state = self._gateways.get((site, gateway))
        return 0 if state is None else state.missing

    def observe(self, *, site: str, gateway: str, seq: int, ts: int) -> list[Observation]:
        """What this message (number `seq`, gateway timestamp `ts` in ms) reveals; usually
        nothing. At most one observation of each kind."""
        state = self._gateways.get((site, gateway))
        if state is None:
            self._gateways[(site, gateway)] = _Gateway(highest=seq, floor=seq, newest_ts=ts)
            return []
        out: list[Observation] = []
        lost = 0
        if seq > state.highest:
            if seq > state.highest + 1:
                self._open(state, state.highest + 1, seq - 1)
                out.append(Observation(SequenceEvent.GAP, seq, seq - state.highest - 1))
            state.highest = seq
            state.newest_ts = max(state.newest_ts, ts)
        elif self._is_reset(state, seq, ts):
            lost = state.missing
            self._gateways[(site, gateway)] = _Gateway(highest=seq, floor=seq, newest_ts=ts,
                                                       reset_ts=ts)
            out.append(Observation(SequenceEvent.RESET, seq, 1))
            if lost:
                out.append(Observation(SequenceEvent.LOST, seq, lost))
            return out
        elif seq < state.floor:
            out.append(Observation(SequenceEvent.STALE, seq, 1))
        elif self._fill(state, seq):
            out.append(Observation(SequenceEvent.LATE, seq, 1))
        else:
            out.append(Observation(SequenceEvent.REPEAT, seq, 1))
        lost = self._give_up(state)
        if lost:
            out.append(Observation(SequenceEvent.LOST, seq, lost))
        return out

    def void(self, *, site: str, gateway: str, first: int, last: int,
             ts: int | None = None) -> list[Observation]:
        """Settle the numbers [first, last] a gateway's power cut left unaccounted for (its
        status's `buffer_void`): what this reveals, at most one observation of each kind.

        Numbers above the highest seen are a `gap`, as message `last` + 1 would have shown,
        and the highest moves up to `last`, as if message `last` had come at the status's time
        `ts` (ms); then the range's missing numbers are `void`. Each
        observation has `seq` = `first` and its count. Numbers between the highest and `first`,
        which the gateway still holds, stay missing. Nothing is known below the floor, nor of a
        gateway never heard of (its first message starts it). A status that predates the
        current numbering speaks of the old one: the caller checks `predates_numbering` first.
        """
        if first > last:
            raise ValueError("a void range is [first, last] with first <= last")
        state = self._gateways.get((site, gateway))
        if state is None or state.voided == (first, last):
            return []
        out: list[Observation] = []
        if last > state.highest:
            # What message last + 1 would reveal: the numbers above the highest are skipped.
            # So the counts are the same whichever comes first, the status or that message.
            self._open(state, state.highest + 1, last)
            out.append(Observation(SequenceEvent.GAP, first, last - state.highest))
            state.highest = last
            if ts is not None:
                # Messages from before the cut, still queued at the broker, are older than the
                # status: below the highest now, they must not look like a reset's.
                state.newest_ts = max(state.newest_ts, ts)
        # The missing numbers of the range are settled; below `first` they stay awaited.
        void = self._remove(state, max(first, state.floor), last)
        state.voided = (first, last)
        if void:
            out.append(Observation(SequenceEvent.VOID, first, void))
        lost = self._give_up(state)
        if lost:
            out.append(Observation(SequenceEvent.LOST, first, lost))
        return out

    def predates_numbering(self, *, site: str, gateway: str, ts: int) -> bool:
        """True when a status of gateway time `ts` (ms) is older than the reset that started
        the gateway's current numbering: the numbers it names are the old numbering's."""
        state = self._gateways.get((site, gateway))
        return state is not None and state.reset_ts is not None and ts < state.reset_ts

    def _is_reset(self, state: _Gateway, seq: int, ts: int) -> bool:
        """A number below the highest, newer than anything seen: the numbering restarted.
        Not a number of the last void range: that is a message from before the cut, queued."""
        if seq >= state.highest or ts <= state.newest_ts:
            return False
        if seq != 0 and ts <= state.newest_ts + self._reset_slack_ms:
            return False
        return state.voided is None or not state.voided[0] <= seq <= state.voided[1]

    def _open(self, state: _Gateway, first: int, last: int) -> None:
        """Numbers [first, last], above every interval, are missing from now on."""
        state.starts.append(first)
        state.ends.append(last)
        state.opened_s.append(self._clock())
        state.missing += last - first + 1

    @staticmethod
    def _remove(state: _Gateway, lo: int, hi: int) -> int:
        """Remove [lo, hi] from the missing intervals; how many numbers were missing in it.
        Touches only the intervals that overlap it, whatever the range's length."""
        if lo > hi:
            return 0
        i = bisect_right(state.starts, lo) - 1
        if i < 0 or state.ends[i] < lo:
            i += 1
        j = bisect_right(state.starts, hi)  # intervals i..j-1 overlap [lo, hi]
        if i >= j:
            return 0
        removed = sum(min(state.ends[k], hi) - max(state.starts[k], lo) + 1 for k in range(i, j))
        starts, ends, opened = [], [], []
        if state.starts[i] < lo:  # the part below the range stays missing
            starts.append(state.starts[i])
            ends.append(lo - 1)
            opened.append(state.opened_s[i])
        if state.ends[j - 1] > hi:  # and the part above it
            starts.append(hi + 1)
            ends.append(state.ends[j - 1])
            opened.append(state.opened_s[j - 1])
        state.starts[i:j], state.ends[i:j], state.opened_s[i:j] = starts, ends, opened
        state.missing -= removed
        return removed

    @staticmethod
    def _fill(state: _Gateway, seq: int) -> bool:
        """Remove `seq` from the missing intervals; False when it was not missing."""
        i = bisect_right(state.starts, seq) - 1
        if i < 0 or seq > state.ends[i]:
            return False
        start, end = state.starts[i], state.ends[i]
        if start == end:
            del state.starts[i], state.ends[i], state.opened_s[i]
        elif seq == start:
            state.starts[i] = seq + 1  # a backlog replayed in order takes this branch
        elif seq == end:
            state.ends[i] = seq - 1
        else:
            state.ends[i] = seq - 1
            state.starts.insert(i + 1, seq + 1)
            state.ends.insert(i + 1, end)
            state.opened_s.insert(i + 1, state.opened_s[i])
        state.missing -= 1
        return True

    def _give_up(self, state: _Gateway) -> int:
        """Drop the lowest intervals while too many, or open too long; how many numbers."""
        lost = 0
        deadline = self._clock() - self._horizon_s
        while state.starts and (len(state.starts) > self._max_gaps
                                or state.opened_s[0] < deadline):
            count = state.ends[0] - state.starts[0] + 1
            state.floor = state.ends[0] + 1  # what lay below is forgotten
            del state.starts[0], state.ends[0], state.opened_s[0]
            state.missing -= count
            lost += count
        return lost
