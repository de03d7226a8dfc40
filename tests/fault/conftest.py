"""Crash-test fixtures: the gateway tests' pymodbus servers (the suite's influxd is shared: it is
never killed here; each test has its own broker). Helpers live in `faultkit.py`."""

from __future__ import annotations

import sys
from pathlib import Path

# --import-mode=importlib puts no test folder on sys.path: faultkit and the gateway tests' gwkit.
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "gateway"))

from gwkit import modbus_server  # noqa: F401  (a fixture, shared with the gateway tests)
