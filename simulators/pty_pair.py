"""A pair of connected pseudo-terminals (socat), to play a serial RS-485 line in tests.

The simulator serves Modbus RTU on one end; a client (the gateway) opens the other.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType


class PtyPair:
    """`socat` linking two pseudo-terminals, exposed as symlinks in `directory`."""

    def __init__(self, directory: str | Path, *, timeout_s: float = 5.0) -> None:
        socat = shutil.which("socat")
        if socat is None:
            raise FileNotFoundError("socat is not installed (Debian package socat)")
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        self.server_end = str(folder / "ttySIM0")
        self.client_end = str(folder / "ttySIM1")
        self._process = subprocess.Popen(
            [socat, f"pty,raw,echo=0,link={self.server_end}",
             f"pty,raw,echo=0,link={self.client_end}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while not (Path(self.server_end).exists() and Path(self.client_end).exists()):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("socat did not create the pseudo-terminal pair")
            time.sleep(0.02)

    def close(self) -> None:
        """Stop socat (the pseudo-terminals disappear with it)."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)

    def __enter__(self) -> PtyPair:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
