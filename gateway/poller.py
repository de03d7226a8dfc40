"""The device poller: the one owner of Modbus I/O. It turns a device into readings.

pymodbus' exceptions are translated here into reasons carried by `bad` readings; nothing else
in the gateway sees a Modbus error.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.framer import FramerType
from pymodbus.pdu import ExceptionResponse

from gateway.plan import ReadRequest, plan_reads
from telemetry.datatypes import RegisterType
from telemetry.payload import Quality, Reading
from telemetry.registers import decode_registers
from telemetry.site import Device, GatewayConfig, Sensor, SerialConnection, TcpConnection
from telemetry.template import MqttField, RegisterPoint

log = logging.getLogger(__name__)

_EXCEPTION_NAMES = {1: "illegal function", 2: "illegal data address", 3: "illegal data value",
                    4: "device failure", 5: "acknowledge", 6: "device busy",
                    10: "gateway path unavailable", 11: "gateway target failed to respond"}


class PollError(Exception):
    """A whole request failed; `reason` is what bad readings carry."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PollResult:
    readings: tuple[Reading, ...]
    health: str  # "ok" or the reason of the last failure


class DevicePoller:
    """Polls one Modbus device of a gateway configuration."""

    def __init__(self, *, config: GatewayConfig, device: Device, max_gap: int = 10) -> None:
        self.device = device
        self.template = config.templates[device.template]
        self._sensors = [(s, config.point_of(device, s)) for s in device.sensors]
        points = {p.key: p for _, p in self._sensors if isinstance(p, RegisterPoint)}
        self.requests = plan_reads(points.values(), max_gap=max_gap)
        self._client = _make_client(device)

    async def close(self) -> None:
        self._client.close()

    async def poll(self) -> PollResult:
        """Read every request; a failed request makes its points `bad`, not the others."""
        raw: dict[str, float | str | bool] = {}
        failures: dict[str, str] = {}
        for request in self.requests:
            try:
                values = await self._read(request)
            except PollError as exc:
                for point in request.points:
                    failures[point.key] = exc.reason
                continue
            raw.update(values)
        readings = tuple(_reading(sensor, point, raw, failures)
                         for sensor, point in self._sensors)
        health = next(iter(failures.values()), "ok")
        return PollResult(readings, health)

    async def _read(self, request: ReadRequest) -> dict[str, float | str | bool]:
        client = self._client
        if not client.connected:
            await client.connect()
            if not client.connected:
                raise PollError("connection failed")
        read = {
            RegisterType.COIL: client.read_coils,
            RegisterType.DISCRETE_INPUT: client.read_discrete_inputs,
            RegisterType.HOLDING: client.read_holding_registers,
            RegisterType.INPUT: client.read_input_registers,
        }[request.register_type]
        try:
            response = await read(request.address, count=request.count,
                                  device_id=self.device.unit_id)
        except ConnectionException as exc:
            raise PollError("timeout" if "timeout" in str(exc).lower() else "no connection") \
                from exc
        except ModbusException as exc:
            raise PollError(f"modbus error: {exc}") from exc
        if isinstance(response, ExceptionResponse) or response.isError():
            code = getattr(response, "exception_code", 0)
            raise PollError(f"modbus exception {code} ({_EXCEPTION_NAMES.get(code, 'unknown')})")
        out: dict[str, float | str | bool] = {}
        for point in request.points:
            offset = point.address - request.address
            if request.register_type.is_bit:
                out[point.key] = bool(response.bits[offset])
            else:
                regs = response.registers[offset: offset + point.count]
                out[point.key] = decode_registers(regs, data_type=point.data_type,
                                                  order=point.order, bit=point.bit)
        return out


def _reading(sensor: Sensor, point: RegisterPoint | MqttField,
             raw: dict[str, float | str | bool], failures: dict[str, str]) -> Reading:
    """One sensor's reading from the raw values of a poll: scale, offset, range check."""
    unit = sensor.unit if sensor.unit is not None else point.unit
    if point.key not in raw:
        return Reading(sensor=sensor.id, value=None, unit=unit, quality=Quality.BAD,
                       reason=failures.get(point.key, "not read"))
    value = raw[point.key]
    if isinstance(value, str):
        return Reading(sensor=sensor.id, value=None, unit=unit, quality=Quality.BAD,
                       reason="text point cannot be a sensor")
    number = point.physical(float(value)) * sensor.scale + sensor.offset
    if not math.isfinite(number):
        return Reading(sensor=sensor.id, value=None, unit=unit, quality=Quality.BAD,
                       reason="not a number")
    if (sensor.valid_min is not None and number < sensor.valid_min) or (
            sensor.valid_max is not None and number > sensor.valid_max):
        return Reading(sensor=sensor.id, value=number, unit=unit,
                       quality=Quality.UNCERTAIN, reason="out of range")
    return Reading(sensor=sensor.id, value=number, unit=unit)


def _make_client(device: Device) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
    connection = device.connection
    # Retries are ours (per poll cycle), so that one dead device cannot stall its neighbours.
    if isinstance(connection, TcpConnection):
        framer = FramerType.RTU if connection.type == "rtu_over_tcp" else FramerType.SOCKET
        return AsyncModbusTcpClient(connection.host, port=connection.port, framer=framer,
                                    timeout=device.timeout_s, retries=device.retries,
                                    reconnect_delay=0)
    if isinstance(connection, SerialConnection):
        return AsyncModbusSerialClient(connection.port, framer=FramerType.RTU,
                                       baudrate=connection.baudrate, parity=connection.parity,
                                       bytesize=connection.bytesize,
                                       stopbits=connection.stopbits, timeout=device.timeout_s,
                                       retries=device.retries, reconnect_delay=0)
    raise ValueError(f"device {device.id} has no Modbus connection")
