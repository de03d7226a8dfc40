"""Stopping child processes: politely first, then for good."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterable


def stop_processes(processes: Iterable[subprocess.Popen[bytes]], *, timeout_s: float = 15) -> None:
    """SIGTERM every process still running, wait up to `timeout_s` each, SIGKILL the stubborn.

    All are signalled before any is waited for, so they shut down in parallel.
    """
    children = list(processes)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=5)
