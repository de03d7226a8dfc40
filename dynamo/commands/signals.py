"""Blocking until the process is asked to stop."""

from __future__ import annotations

import signal


def wait_for_signal() -> None:
    """Return after SIGINT or SIGTERM."""
    received: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: received.append(s))
    while not received:
        signal.pause()
