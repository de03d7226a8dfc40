"""Every data type and byte/word order, read by the gateway's poller from a real pymodbus
server over Modbus TCP, RTU over TCP and RTU on a serial pseudo-terminal pair.

The register images and expected values are the codec's regression cases
(tests/telemetry/cases/decoding): the same data, now through requests, coalescing and framing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from gwkit import ModbusTestServer

from gateway.poller import DevicePoller
from simulators import PtyPair
from telemetry.site import Device, Equipment, GatewayConfig, Sensor, SerialConnection, TcpConnection
from telemetry.template import DeviceTemplate, RegisterPoint

CASES = sorted((Path(__file__).parents[1] / "telemetry" / "cases" / "decoding")
               .glob("*/case.yaml"))


def _rig(server: ModbusTestServer) -> tuple[DeviceTemplate, dict[str, Any]]:
    """A template with one holding-register point per case, the cases laid out side by side
    (so that the planner coalesces them), plus a coil and a discrete input."""
    points: list[RegisterPoint] = []
    expected: dict[str, Any] = {}
    address = 3
    for file in CASES:
        case = yaml.safe_load(file.read_text())
        key = file.parent.name.replace("-", "_")
        words = list(case["registers"])
        point = RegisterPoint(key=key, register_type="holding", address=address,
                              data_type=case["data_type"], order=case["order"],
                              bit=case.get("bit"),
                              length=len(words) if case["data_type"] == "string" else 0)
        server.set_registers("holding", address, words)
        points.append(point)
        expected[key] = case["expected"]
        address += len(words) + 1  # a one-register hole between cases
    points.append(RegisterPoint(key="coil_on", register_type="coil", address=17,
                                data_type="bool"))
    points.append(RegisterPoint(key="input_off", register_type="discrete_input", address=40,
                                data_type="bool"))
    server.tables["coil"][17] = 1
    server.tables["coil"][18] = 0
    server.tables["discrete_input"][40] = 0
    server.tables["discrete_input"][39] = 1
    expected.update(coil_on=True, input_off=False)
    template = DeviceTemplate(model="decoding-rig", points=tuple(points))
    return template, expected


def _poll(template: DeviceTemplate, connection: TcpConnection | SerialConnection,
          unit_id: int) -> tuple[dict[str, Any], str, int]:
    device = Device(id="rig", template=template.model, equipment="rig", connection=connection,
                    unit_id=unit_id, timeout_s=2.0, retries=1, pause_after_connect_s=0.1,
                    pause_between_requests_s=0.01,
                    sensors=tuple(Sensor(id=f"rig.{p.key}", point=p.key, role="line_state")
                                  for p in template.points))
    config = GatewayConfig(site="test", gateway="test-gw",
                           equipment=(Equipment(id="rig", kind="other"),), devices=(device,),
                           templates={template.model: template})

    async def poll() -> tuple[dict[str, Any], str, int]:
        poller = DevicePoller(config=config, device=device)
        try:
            result = await poller.poll()
        finally:
            await poller.close()
        return result.raw, result.health, len(poller.requests)

    return asyncio.run(poll())


@pytest.mark.parametrize("transport", ["tcp", "rtu_over_tcp", "serial_rtu"])
def test_every_type_and_order_decodes_end_to_end(
        transport: str, tmp_path: Path, modbus_server: Callable[..., ModbusTestServer]) -> None:
    connection: TcpConnection | SerialConnection
    pair = None
    if transport == "serial_rtu":
        pair = PtyPair(tmp_path / "tty")
        server = modbus_server(unit_id=7, serial_port=pair.server_end)
        connection = SerialConnection(port=pair.client_end, baudrate=19200)
    else:
        server = modbus_server(unit_id=7, rtu_over_tcp=transport == "rtu_over_tcp")
        connection = TcpConnection(type=transport, host="127.0.0.1", port=server.port)
    try:
        template, expected = _rig(server)
        raw, health, requests = _poll(template, connection, unit_id=7)
    finally:
        if pair is not None:
            server.stop()
            pair.close()
    assert health == "ok"
    # Coalescing: all cases in one holding read (holes ≤ max_gap), one per bit table.
    assert requests == 3
    assert set(raw) == set(expected)
    for key, value in expected.items():
        if isinstance(value, float):
            assert raw[key] == pytest.approx(value, rel=1e-6), key
        else:
            assert raw[key] == value and type(raw[key]) is type(value), key
