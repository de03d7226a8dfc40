"""A Modbus client that is not ours (mbpoll, Debian package) understands the simulators."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

import simulators
from simulators import RunningSimulators

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll is not installed"),
]


@pytest.fixture(scope="module")
def sims() -> Iterator[RunningSimulators]:
    with simulators.run_in_thread(machines=["dryer"], speed=60.0, seed=11) as running:
        yield running


def _mbpoll(port: int, *args: str) -> float:
    # -1: poll once; -r is 1-based (30073 = address 72); -B: big-endian word order.
    done = subprocess.run(["mbpoll", "-m", "tcp", "-p", str(port), "-1", *args, "127.0.0.1"],
                          capture_output=True, text=True, timeout=20, check=True)
    match = re.search(r"^\[\d+\]:\s+(-?[\d.]+)", done.stdout, re.MULTILINE)
    assert match, done.stdout
    return float(match.group(1))


def test_mbpoll_reads_the_sdm630_import_energy(sims: RunningSimulators) -> None:
    before_ms = time.time() * 1000
    value = _mbpoll(sims.ports["dryer"], "-a", "1", "-t", "3:float", "-B", "-r", "73", "-c", "1")
    after_ms = time.time() * 1000
    low, high = sims.truth("dryer").window("grid_import_kwh", before_ms, after_ms)
    # mbpoll prints 6 significant digits.
    assert low * (1 - 1e-5) <= value <= high * (1 + 1e-5)
    assert value == pytest.approx(sims.truth("dryer").value_at("grid_import_kwh", before_ms),
                                  rel=0.005)


def test_mbpoll_reads_the_word_swapped_em24(sims: RunningSimulators) -> None:
    # mbpoll's default 32-bit word order is little-endian: the EM24's CDAB, raw kWh x 10.
    before_ms = time.time() * 1000
    raw = _mbpoll(sims.ports["dryer"], "-a", "2", "-t", "3:int", "-r", "53", "-c", "1")
    after_ms = time.time() * 1000
    low, high = sims.truth("dryer").window("pv_energy_kwh", before_ms, after_ms)
    assert low - 0.05 <= raw / 10 <= high + 0.05
