"""gammu-smsd on gammu's dummy phone: real gammu code, the modem's messages as files."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from alerting.gammu import SmsdPaths, read_sent

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
    from alertkit import running_smsd  # importable once the line above has run

    with running_smsd(tmp_path) as paths:
        yield Smsd(paths=paths, phone=tmp_path / "phone")
