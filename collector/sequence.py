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
                state.starts.append(state.highest + 1)
                state.ends.append(seq - 1)
                state.opened_s.append(self._clock())
                state.missing += seq - state.highest - 1
                out.append(Observation(SequenceEvent.GAP, seq, seq - state.highest - 1))
            state.highest = seq
            state.newest_ts = max(state.newest_ts, ts)
        elif seq < state.highest and ts > state.newest_ts and (
                seq == 0 or ts > state.newest_ts + self._reset_slack_ms):
            lost = state.missing
            self._gateways[(site, gateway)] = _Gateway(highest=seq, floor=seq, newest_ts=ts)
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
