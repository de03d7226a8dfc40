"""systemd notifications: readiness, watchdog keep-alives and status text (sd_notify(3)).

Only active when systemd started us with `NOTIFY_SOCKET` set (Type=notify, WatchdogSec=…);
elsewhere every call is a no-op. The protocol is one datagram per message, so no library is
needed.
"""

from __future__ import annotations

import os
import socket


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
