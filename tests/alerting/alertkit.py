"""What several alerting tests share."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from alerting.gammu import SmsdPaths, write_smsd_config
from alerting.notifier import NotifierError


class Phone:
    """Records the SMS it is given, or refuses them while `down`: it stands in for the SMS
    network, never for the engine or the edge under test."""

    name = "phone"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []  # (number, text)
        self.down = False

    def send(self, *, to: str, text: str) -> str:
        if self.down:
            raise NotifierError(self.name, "modem unplugged")
        self.sent.append((to, text))
        return f"ref-{len(self.sent)}"


@contextmanager
def running_smsd(directory: Path) -> Iterator[SmsdPaths]:
    """gammu-smsd on gammu's dummy phone, `directory/phone/` (drop inbound SMS there): real
    gammu code, the modem's messages as files; its configuration and log in `directory/smsd`."""
    if shutil.which("gammu-smsd") is None:
        pytest.fail("gammu-smsd is not installed: run scripts/bootstrap")
    paths = write_smsd_config(directory=directory / "smsd", device=f"{directory / 'phone'}/",
                              model="dummy", connection="none")
    with (directory / "smsd" / "stdout.log").open("wb") as log:
        process = subprocess.Popen(["gammu-smsd", "-c", str(paths.config)], stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        yield paths
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
