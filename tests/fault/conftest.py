"""Crash-test fixtures: the gateway tests' pymodbus servers (the suite's influxd is shared: it is
never killed here; each test has its own broker). Helpers live in `faultkit.py`."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# --import-mode=importlib puts no test folder on sys.path: faultkit and the gateway tests' gwkit.
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "gateway"))

from gwkit import ModbusTestServer


@pytest.fixture
def modbus_server() -> Iterator[Callable[..., ModbusTestServer]]:
    servers: list[ModbusTestServer] = []

    def make(**kwargs: Any) -> ModbusTestServer:
        server = ModbusTestServer(**kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
