"""A service process that can be started, stopped, killed and restarted on the same port/data."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


class ServiceProcess:
    """Base of the local services: owns one subprocess and its log file."""

    name = "service"

    def __init__(self, *, workdir: Path) -> None:
        self.workdir = workdir.resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def wait_ready(self) -> None:
        raise NotImplementedError

    @property
    def log_file(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                start_new_session=True,  # Ctrl-C in a terminal reaches us, not the service
            )
        try:
            self.wait_ready()
        except TimeoutError as exc:
            tail = self.log_file.read_text(errors="replace")[-2000:]
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {exc}\n{tail}") from exc

    def stop(self, *, kill: bool = False) -> None:
        """Stop gracefully (SIGTERM), or abruptly with `kill=True` (SIGKILL, like a power cut)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=5)
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> ServiceProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
