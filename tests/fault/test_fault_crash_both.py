"""The broker, the collector or both killed -9 20 times at random moments while three gateways
stream: every committed message in InfluxDB exactly once (crashkit.py; `-m fault`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from crashkit import scenario
from gwkit import ModbusTestServer

from telemetry.influx.client import InfluxClient

pytestmark = [pytest.mark.fault, pytest.mark.timeout(400)]


def test_broker_and_collector_killed_20_times_lose_nothing(
        tmp_path: Path, influx: InfluxClient,
        modbus_server: Callable[..., ModbusTestServer]) -> None:
    scenario(tmp_path, influx, modbus_server, victims="both")
