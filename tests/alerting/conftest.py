"""gammu-smsd on gammu's dummy phone: real gammu code, the modem's messages as files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from alerting.gammu import SmsdPaths, read_sent, write_smsd_config

# --import-mode=importlib puts no test folder on sys.path; the alerting tests share alertkit.py.
sys.path.insert(0, str(Path(__file__).parent))


@dataclass
class Smsd:
    paths: SmsdPaths
    phone: Path  # the dummy phone's folder: drop inbound SMS here

    def sent(self) -> dict[str, str]:
        return read_sent(self.paths.sent)


@pytest.fixture
def smsd(tmp_path: Path) -> Iterator[Smsd]:
    if shutil.which("gammu-smsd") is None:
        pytest.fail("gammu-smsd is not installed: run scripts/bootstrap")
    phone = tmp_path / "phone"
    paths = write_smsd_config(directory=tmp_path / "smsd", device=f"{phone}/", model="dummy",
                              connection="none")
    log = (tmp_path / "smsd" / "stdout.log").open("wb")
    process = subprocess.Popen(["gammu-smsd", "-c", str(paths.config)], stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        yield Smsd(paths=paths, phone=phone)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
