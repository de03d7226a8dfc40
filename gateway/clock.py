"""Is the gateway's clock to be trusted? A Raspberry Pi has no real-time clock.

At boot, before NTP answers, a Pi's clock shows the last shutdown time (fake-hwclock) or 1970.
Two checks: the year (a clock before 2024 is certainly wrong) and the kernel's own view, which
NTP clients (systemd-timesyncd, chrony) keep: `adjtimex` returns TIME_ERROR while the clock is
not synchronised.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable

_TIME_ERROR = 5  # adjtimex(2): "clock not synchronized"
_EARLIEST_PLAUSIBLE_S = 1_704_067_200  # 2024-01-01T00:00:00Z: no reading of ours is older
# struct timex is about 208 bytes on 64-bit Linux; a zeroed, larger buffer means modes=0,
# i.e. read-only.
_TIMEX_SIZE = 512


def kernel_clock_synced() -> bool | None:
    """The kernel's answer (None where adjtimex is unavailable, e.g. not Linux)."""
    path = ctypes.util.find_library("c")
    if path is None:
        return None
    try:
        adjtimex = ctypes.CDLL(path, use_errno=True).adjtimex
    except (OSError, AttributeError):
        return None
    state = adjtimex(ctypes.create_string_buffer(_TIMEX_SIZE))
    if state < 0:
        return None
    return bool(state != _TIME_ERROR)


def clock_synced(*, now_s: float | None = None,
                 kernel: Callable[[], bool | None] = kernel_clock_synced) -> bool:
    """True when the wall clock is plausible and, where the kernel knows, synchronised."""
    now = time.time() if now_s is None else now_s
    if now < _EARLIEST_PLAUSIBLE_S:
        return False
    return kernel() is not False
