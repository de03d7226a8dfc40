"""Per-gateway sequence tracking: gaps show lost messages, repeats show redeliveries.

Each gateway numbers its telemetry messages +1 per message (docs/mqtt.md). The tracker remembers
the highest number seen and a window of recent numbers per gateway, so that a redelivered
message (QoS 1 after a lost acknowledgement) is told apart from a late one (a gateway draining
its spool out of order fills a gap it had left).

Only meaningful when one collector sees all of a gateway's messages: with a shared
subscription each member sees a share, so the service turns tracking off.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum


class SequenceEvent(StrEnum):
    GAP = "gap"  # numbers skipped: messages not (yet) received
    REPEAT = "repeat"  # a number already received: a redelivery
    LATE = "late"  # a number below the highest seen, never received before: fills a gap
    RESET = "reset"  # far below the window: the gateway restarted its numbering


@dataclass(frozen=True, slots=True)
class Observation:
    kind: SequenceEvent
    seq: int
    count: int


@dataclass
class _Gateway:
    highest: int
    seen: set[int]
    order: deque[int] = field(default_factory=deque)


class SequenceTracker:
    """Classifies each message's sequence number; not thread-safe (one caller: paho's thread)."""

    def __init__(self, *, window: int = 4096) -> None:
        self._window = window
        self._gateways: dict[tuple[str, str], _Gateway] = {}

    def observe(self, *, site: str, gateway: str, seq: int) -> Observation | None:
        """The event this number reveals, or None when it simply follows the previous one."""
        state = self._gateways.get((site, gateway))
        if state is None:
            self._gateways[(site, gateway)] = self._fresh(seq)
            return None
        if seq in state.seen:
            return Observation(SequenceEvent.REPEAT, seq, 1)
        if seq < state.highest - self._window:
            self._gateways[(site, gateway)] = self._fresh(seq)
            return Observation(SequenceEvent.RESET, seq, 1)
        self._remember(state, seq)
        if seq < state.highest:
            return Observation(SequenceEvent.LATE, seq, 1)
        skipped = seq - state.highest - 1
        state.highest = seq
        return Observation(SequenceEvent.GAP, seq, skipped) if skipped > 0 else None

    def _fresh(self, seq: int) -> _Gateway:
        state = _Gateway(highest=seq, seen=set())
        self._remember(state, seq)
        return state

    def _remember(self, state: _Gateway, seq: int) -> None:
        state.seen.add(seq)
        state.order.append(seq)
        if len(state.order) > self._window:
            state.seen.discard(state.order.popleft())
