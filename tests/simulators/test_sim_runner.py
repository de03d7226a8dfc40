"""Running the simulators: the command line, a serial (RTU) line, a configuration of one's own."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusSerialClient
from pymodbus.framer import FramerType

import simulators
from telemetry.datatypes import DataType
from telemetry.registers import decode_registers

pytestmark = pytest.mark.timeout(60)
REPO = Path(__file__).resolve().parents[2]


def test_cli_runs_for_a_bounded_time() -> None:
    began = time.monotonic()
    status = simulators.cli_main(["--machine", "packaging", "--port-base", "0", "--speed", "600",
                                  "--duration", "1", "--status-every", "0.5",
                                  "--log-level", "WARNING"])
    assert status == 0
    assert time.monotonic() - began < 10


def test_module_entry_point_shows_help() -> None:
    done = subprocess.run([sys.executable, "-m", "simulators", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=30, check=True)
    assert "--speed" in done.stdout and "--port-base" in done.stdout


def test_run_reports_its_ports() -> None:
    seen: dict[str, int] = {}
    simulators.run(machines=["freezer", "dryer"], port_base=0, speed=60.0, duration_s=0.5,
                   status_every_s=None, on_started=seen.update)
    assert set(seen) == {"freezer", "dryer"} and all(p > 0 for p in seen.values())


def test_run_takes_a_command_line_machine_choice() -> None:
    seen: dict[str, int] = {}
    simulators.run(machine="all", port_base=0, speed=60.0, duration_s=0.3, status_every_s=None,
                   on_started=seen.update)
    assert set(seen) == set(simulators.MACHINES)


def test_unknown_machine_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown machine"):
        simulators.run_in_thread(machines=["oven"])


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed")
def test_modbus_rtu_on_a_pseudo_terminal(tmp_path: Path) -> None:
    with simulators.PtyPair(tmp_path) as line, simulators.run_in_thread(
            machines=["packaging"], speed=60.0, serial_ports={"packaging": line.server_end},
            baudrate=19200) as sims:

        async def read() -> None:
            client = AsyncModbusSerialClient(line.client_end, framer=FramerType.RTU,
                                             baudrate=19200, timeout=2, retries=0)
            await client.connect()
            try:
                before_ms = time.time() * 1000
                response = await client.read_holding_registers(4, count=2, device_id=2)
                after_ms = time.time() * 1000
                assert not response.isError()
                packed = decode_registers(response.registers, data_type=DataType.UINT32)
                low, high = sims.truth("packaging").window("units_packed", before_ms, after_ms)
                assert low <= packed <= high
            finally:
                client.close()

        asyncio.run(read())


def test_serving_a_configuration_of_ones_own(tmp_path: Path) -> None:
    site = (REPO / "firmware-config" / "sites" / "ariege" / "packaging.yaml").read_text()
    site = site.replace("template_dirs: [../../templates]",
                        f"template_dirs: [{REPO / 'firmware-config' / 'templates'}]")
    site = site.replace("unit_id: 2", "unit_id: 7")
    own = tmp_path / "line.yaml"
    own.write_text(site, encoding="utf-8")
    with simulators.run_in_thread(machines=["packaging"], configs={"packaging": own}) as sims:
        config = sims.gateway_config("packaging")
        assert {d.unit_id for d in config.devices} == {1, 7}

        async def read() -> list[int]:
            from pymodbus.client import AsyncModbusTcpClient
            client = AsyncModbusTcpClient(sims.host, port=sims.ports["packaging"], timeout=5)
            await client.connect()
            try:
                response = await client.read_holding_registers(0, count=1, device_id=7)
                assert not response.isError()
                return list(response.registers)
            finally:
                client.close()

        state = asyncio.run(read())[0]
        assert state == sims.truth("packaging").latest().values["line_state"]
