"""systemd notifications (sd_notify(3)) and the liveness that decides the watchdog's keep-alives.

Notifications go out only when systemd started us with `NOTIFY_SOCKET` set (Type=notify,
WatchdogSec=…); elsewhere every call is a no-op. The protocol is one datagram per message, so no
library is needed. The liveness (heartbeats, their bounds, the log of a stall) works everywhere.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from telemetry.logs import fields
from telemetry.site import Device

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends `READY=1`, `WATCHDOG=1` and `STATUS=…` to systemd when it listens."""

    def __init__(self) -> None:
        address = os.environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):  # abstract namespace socket
            address = "\0" + address[1:]
        self._address = address
        usec = os.environ.get("WATCHDOG_USEC", "")
        # Ping at a third of the watchdog delay, as sd_watchdog_enabled(3) advises (≤ half).
        self.watchdog_interval_s = int(usec) / 3e6 if usec.isdigit() and int(usec) else None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, message: str) -> bool:
        """Send one message; False when systemd is not listening or the send failed."""
        if not self._address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message.encode(), self._address)
        except OSError:
            return False
        return True

    def ready(self) -> bool:
        return self.notify("READY=1")

    def alive(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")


# -- liveness by progress ----------------------------------------------------------------------
#
# A task that is merely "not done" proves nothing: a poll stuck forever in an await (a lock never
# released, a transport that never returns, a thread it waits on deadlocked) is not done. So
# each loop records a heartbeat when it makes progress, and the keep-alives go out only while
# every heartbeat is younger than that loop's own bound (docs/gateway.md, "Under systemd").

# Scheduling slack on top of a poll loop's computed worst case: the spool commit (which may
# wait behind the forwarder's work on the one spool thread) and a busy Pi's event loop.
POLL_MARGIN_S = 5.0
# The forwarder loop wakes at least every 0.5 s; an iteration waits only on the spool thread.
# Two minutes covers a large acknowledged deletion on a slow SD card.
FORWARDER_BOUND_S = 120.0


def poll_worst_s(device: Device, requests: int) -> float:
    """The longest one poll of `device` can take when every bound of gateway/poller.py is hit.

    Per attempt: the connection (`timeout_s + 1`), the pause after it, the read's safety net
    (`2 × timeout_s + 1`). Per request: `retries + 1` attempts, `retries` sleeps of at most
    `timeout_s` between them, and the pause between requests. One more pause ends the poll.
    """
    attempt = (device.timeout_s + 1) + device.pause_after_connect_s + (2 * device.timeout_s + 1)
    request = ((device.retries + 1) * attempt + device.retries * device.timeout_s
               + device.pause_between_requests_s)
    return requests * request + device.pause_between_requests_s


def poll_loop_bound_s(device: Device, requests: int, line_wait_s: float = 0.0) -> float:
    """The longest a healthy poll loop goes between two completed polls.

    The wait before a poll is at most the interval; on a shared line (RS-485) the poll first
    waits for the line's lock, at most one poll of each other device on it (`line_wait_s`:
    asyncio's lock serves waiters in order); then the poll itself.
    """
    return device.poll_interval_s + line_wait_s + poll_worst_s(device, requests) + POLL_MARGIN_S


@dataclass(frozen=True, slots=True)
class Heartbeat:
    at: float  # time.monotonic() of the last progress
    bound_s: float  # older than this: the loop is wedged


class Liveness:
    """The heartbeats of the gateway's loops, by name (`poll:<device>`, `forwarder`).

    A stale heartbeat is logged once, with the device, when it turns stale, and once more if
    it comes back; `fresh()` is what the housekeeping asks before each keep-alive.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._beats: dict[str, Heartbeat] = {}
        self._stale: set[str] = set()

    def beat(self, name: str, bound_s: float, at: float | None = None) -> None:
        """`name` made progress (now, or at `at`); its next progress is due within `bound_s`."""
        self._beats[name] = Heartbeat(self._clock() if at is None else at, bound_s)

    def forget(self, name: str) -> None:
        """`name` stopped on purpose (a device removed by a new configuration, a shutdown)."""
        self._beats.pop(name, None)
        self._stale.discard(name)

    def ages(self) -> dict[str, tuple[float, float]]:
        """(age, bound) in seconds of every heartbeat (the metrics read it from their thread)."""
        now = self._clock()
        return {name: (max(0.0, now - b.at), b.bound_s) for name, b in dict(self._beats).items()}

    def fresh(self) -> bool:
        """True when every heartbeat is within its bound; logs each change of state once."""
        ok = True
        for name, (age, bound) in self.ages().items():
            if age > bound:
                ok = False
                if name not in self._stale:
                    self._stale.add(name)
                    log.error("%s: no progress for %.1f s (bound %.1f s): watchdog keep-alives "
                              "stopped, systemd will restart the gateway if it lasts", name, age,
                              bound, extra=_where(name, age, bound))
            elif name in self._stale:
                self._stale.discard(name)
                log.warning("%s: progressing again after a stall", name,
                            extra=_where(name, age, bound))
        return ok


def _where(name: str, age: float, bound: float) -> MutableMapping[str, Any]:
    kind, _, device = name.partition(":")
    return fields(device=device or None, task=kind, age_s=round(age, 1), bound_s=bound)
