"""The simulators over Modbus TCP, read by a pymodbus client and decoded with the templates:
every sensor of the three site configurations reads the ground truth, within the precision of
its registers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu import ExceptionResponse

import simulators
from simulators import MACHINES, RunningSimulators
from simulators.clock import SITE_TIMEZONE
from telemetry.datatypes import DataType, RegisterType
from telemetry.loader import load_gateway_config
from telemetry.registers import decode_registers
from telemetry.site import Device, GatewayConfig, Sensor
from telemetry.template import RegisterPoint

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def sims() -> Iterator[RunningSimulators]:
    # Fast enough that values move between reads; a sunny morning so the dryer works.
    start = datetime(2025, 6, 10, 10, 0, tzinfo=SITE_TIMEZONE)
    with simulators.run_in_thread(speed=600.0, seed=5, start=start, tick_s=0.1) as running:
        yield running


async def _read(client: AsyncModbusTcpClient, device: Device,
                point: RegisterPoint) -> float:
    unit = device.unit_id
    if point.register_type is RegisterType.COIL:
        response = await client.read_coils(point.address, count=1, device_id=unit)
    elif point.register_type is RegisterType.DISCRETE_INPUT:
        response = await client.read_discrete_inputs(point.address, count=1, device_id=unit)
    elif point.register_type is RegisterType.HOLDING:
        response = await client.read_holding_registers(point.address, count=point.count,
                                                       device_id=unit)
    else:
        response = await client.read_input_registers(point.address, count=point.count,
                                                     device_id=unit)
    assert not response.isError(), f"{device.id} {point.key}: {response}"
    if point.register_type.is_bit:
        return 1.0 if response.bits[0] else 0.0
    raw = decode_registers(response.registers, data_type=point.data_type, order=point.order,
                           bit=point.bit)
    assert not isinstance(raw, str)
    return point.physical(float(raw))


def _tolerance(point: RegisterPoint, sensor: Sensor, truth: float) -> float:
    if point.data_type is DataType.BOOL:
        return 0.0
    if point.data_type in (DataType.FLOAT32, DataType.FLOAT64):
        return 1e-6 * abs(truth) + 1e-6  # float32: ~7 significant digits
    return 0.5 * abs(point.scale * sensor.scale) + 1e-9  # integers round to one count


async def _check_all(sims: RunningSimulators, machine: str) -> dict[str, float]:
    config: GatewayConfig = sims.gateway_config(machine)
    model = sims.models[machine]
    truth = sims.truth(machine)
    read: dict[str, float] = {}
    client = AsyncModbusTcpClient(sims.host, port=sims.ports[machine], timeout=5)
    await client.connect()
    try:
        for device in config.devices:
            template = config.templates[device.template]
            for sensor in device.sensors:
                point = template.point(sensor.point)
                assert isinstance(point, RegisterPoint)
                before_ms = time.time() * 1000
                physical = await _read(client, device, point)
                after_ms = time.time() * 1000
                value = physical * sensor.scale + sensor.offset
                variable = model.variable_for(role=sensor.role, attributes=sensor.attributes,
                                              location=sensor.location)
                assert variable is not None
                # The truth's time base is the millisecond: widen the window by one each side.
                low, high = truth.window(variable, before_ms - 1, after_ms + 1)
                tol = _tolerance(point, sensor, max(abs(low), abs(high)))
                assert low - tol <= value <= high + tol, (
                    f"{sensor.id}: read {value}, truth in [{low}, {high}] (tolerance {tol})")
                read[sensor.id] = value
    finally:
        client.close()
    return read


@pytest.mark.parametrize("machine", MACHINES)
def test_every_sensor_reads_the_truth(sims: RunningSimulators, machine: str) -> None:
    first = asyncio.run(_check_all(sims, machine))
    time.sleep(1.0)  # ten simulated minutes
    second = asyncio.run(_check_all(sims, machine))
    counters = {"dryer": "dryer.electric", "freezer": "freezer.electric",
                "packaging": "packaging.electric"}
    assert second[counters[machine]] > first[counters[machine]]


def test_env_points_the_site_configuration_at_the_simulators(
        sims: RunningSimulators, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in sims.env().items():
        monkeypatch.setenv(name, value)
    for machine in MACHINES:
        config = load_gateway_config(simulators.site_config_path(machine))
        assert {d.connection for d in config.devices} == {
            d.connection for d in sims.gateway_config(machine).devices}


def test_protocol_details(sims: RunningSimulators) -> None:
    async def probe() -> None:
        client = AsyncModbusTcpClient(sims.host, port=sims.ports["dryer"], timeout=5)
        await client.connect()
        try:
            # Reading across the unused registers of a meter gives zeros, not an error.
            gap = await client.read_input_registers(18, count=34, device_id=1)
            assert not gap.isError() and gap.registers == [0] * 34
            # Past the last register: illegal data address.
            beyond = await client.read_input_registers(344, count=2, device_id=1)
            assert isinstance(beyond, ExceptionResponse) and beyond.exception_code == 2
            # A table the device does not have.
            coils = await client.read_coils(0, count=1, device_id=1)
            assert isinstance(coils, ExceptionResponse) and coils.exception_code == 2
            # Devices are read-only.
            write = await client.write_register(0, 1, device_id=5)
            assert isinstance(write, ExceptionResponse)
            # A unit id nobody answers: "gateway target failed to respond".
            missing = await client.read_input_registers(72, count=2, device_id=42)
            assert isinstance(missing, ExceptionResponse) and missing.exception_code == 0x0B
            # Bits packed in a status word (fan running = bit 0 of holding 13).
            status = await client.read_holding_registers(13, count=1, device_id=5)
            truth = sims.truth("dryer").latest().values
            fan = bool(status.registers[0] & 1)
            assert fan == bool(truth["fan_running"])
        finally:
            client.close()

    asyncio.run(probe())
