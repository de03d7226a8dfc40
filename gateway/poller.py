"""The device poller: the one owner of Modbus I/O. It turns a device into readings.

pymodbus' exceptions are translated here into reasons carried by `bad` readings; nothing else
in the gateway sees a Modbus error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from dataclasses import dataclass, field

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ExceptionResponse

from gateway.plan import ReadRequest, plan_reads, with_scale_factors
from gateway.reading import make_reading
from telemetry.datatypes import RegisterType
from telemetry.payload import Reading
from telemetry.registers import decode_registers
from telemetry.site import Device, GatewayConfig, SerialConnection, TcpConnection
from telemetry.template import RegisterPoint

log = logging.getLogger(__name__)

_EXCEPTION_NAMES = {1: "illegal function", 2: "illegal data address", 3: "illegal data value",
                    4: "device failure", 5: "acknowledge", 6: "device busy",
                    10: "gateway path unavailable", 11: "gateway target failed to respond"}


# 5 (acknowledge: still working on it) and 6 (busy) say "ask again later".
_RETRYABLE_CODES = frozenset({5, 6})


class PollError(Exception):
    """A whole request failed; `reason` is what bad readings carry.

    `unreachable`: the device does not answer at all (the rest of the poll is skipped and the
    device backs off); `retryable`: the same request may succeed if sent again.
    """

    def __init__(self, reason: str, *, unreachable: bool = False,
                 retryable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class PollResult:
    readings: tuple[Reading, ...]
    health: str  # "ok" or the reason of the last failure
    # Decoded values by point key, before scale and range checks (strings included).
    raw: dict[str, float | str | bool] = field(default_factory=dict)


class ModbusLine:
    """One Modbus client and the right to talk on it.

    A serial RS-485 line (and an RTU-over-TCP converter in front of one) is half-duplex: the
    devices on it are polled one request at a time, each followed by the configured silence.
    Modbus TCP devices each get a line of their own, so that one dead device never delays
    another.
    """

    def __init__(self, *, device: Device) -> None:
        self.client = _make_client(device)
        self.lock = asyncio.Lock()
        self.shared = not isinstance(device.connection, TcpConnection) \
            or device.connection.type == "rtu_over_tcp"

    def close(self) -> None:
        self.client.close()


def line_key(device: Device) -> str:
    """Devices with the same key share one `ModbusLine`."""
    connection = device.connection
    if isinstance(connection, SerialConnection):
        return f"serial:{connection.port}"
    if isinstance(connection, TcpConnection) and connection.type == "rtu_over_tcp":
        return f"rtu-tcp:{connection.host}:{connection.port}"
    return f"device:{device.id}"


class DevicePoller:
    """Polls one Modbus device of a gateway configuration.

    Failures become `bad` readings with a reason; they never raise. After a connection failure
    or a timeout, the device is left alone for a back-off delay (1 s, doubling up to
    `backoff_max_s`), during which its readings go out `bad` without touching the line.
    """

    def __init__(self, *, config: GatewayConfig, device: Device,
                 line: ModbusLine | None = None) -> None:
        self.device = device
        self.template = config.templates[device.template]
        self._sensors = [(s, config.point_of(device, s)) for s in device.sensors]
        points = {p.key: p for _, p in self._sensors if isinstance(p, RegisterPoint)}
        self.requests = plan_reads(with_scale_factors(points.values(), self.template),
                                   max_gap=device.max_gap, max_count=device.max_registers)
        self.line = line or ModbusLine(device=device)
        self.failures = 0  # consecutive polls that found the device unreachable
        self._retry_at = 0.0
        self._last_reason = "not polled yet"

    async def close(self) -> None:
        self.line.close()

    async def poll(self) -> PollResult:
        """Read every request; a failed request makes its points `bad`, not the others."""
        raw: dict[str, float | str | bool] = {}
        failures: dict[str, str] = {}
        if time.monotonic() < self._retry_at:
            reasons = dict.fromkeys((p.key for r in self.requests for p in r.points),
                                    self._last_reason)
            return self._result(raw, reasons)
        async with self.line.lock:
            unreachable: str | None = None
            for i, request in enumerate(self.requests):
                if unreachable is not None:  # the device is gone: do not wait on it again
                    failures.update(dict.fromkeys((p.key for p in request.points), unreachable))
                    continue
                if i and self.device.pause_between_requests_s:
                    await asyncio.sleep(self.device.pause_between_requests_s)
                try:
                    raw.update(await self._read_with_retries(request))
                except PollError as exc:
                    failures.update(dict.fromkeys((p.key for p in request.points), exc.reason))
                    if exc.unreachable:
                        unreachable = exc.reason
            if self.device.pause_between_requests_s:  # the next device on a shared line waits
                await asyncio.sleep(self.device.pause_between_requests_s)
        if unreachable is not None:
            self.failures += 1
            self._last_reason = unreachable
            backoff = min(self.device.backoff_max_s, 2.0 ** (self.failures - 1))
            self._retry_at = time.monotonic() + backoff
            if not self.line.shared:  # a stale TCP socket (cable pulled): start afresh
                self.line.close()
        else:
            self.failures = 0
        return self._result(raw, failures)

    def _result(self, raw: dict[str, float | str | bool], failures: dict[str, str]) -> PollResult:
        readings = tuple(make_reading(sensor, point, raw, failures)
                         for sensor, point in self._sensors)
        health = next(iter(failures.values()), "ok")
        return PollResult(readings, health, raw)

    async def _read_with_retries(self, request: ReadRequest) -> dict[str, float | str | bool]:
        attempt = 0
        while True:
            try:
                return await self._read(request)
            except PollError as exc:
                if not exc.retryable or attempt >= self.device.retries:
                    raise
            attempt += 1
            # Busy or silent: give the device a moment, a little longer each time.
            await asyncio.sleep(min(self.device.timeout_s, 0.1 * 2 ** attempt))

    async def _connect(self) -> None:
        client = self.line.client
        with contextlib.suppress(TimeoutError, OSError, ModbusException):
            await asyncio.wait_for(client.connect(), timeout=self.device.timeout_s + 1)
        if not client.connected:
            raise PollError("no connection", unreachable=True)
        if self.device.pause_after_connect_s:
            # USB-RS485 adapters and some slaves lose the first request sent right after the
            # port opens.
            await asyncio.sleep(self.device.pause_after_connect_s)

    async def _read(self, request: ReadRequest) -> dict[str, float | str | bool]:
        client = self.line.client
        if not client.connected:
            await self._connect()
        read = {
            RegisterType.COIL: client.read_coils,
            RegisterType.DISCRETE_INPUT: client.read_discrete_inputs,
            RegisterType.HOLDING: client.read_holding_registers,
            RegisterType.INPUT: client.read_input_registers,
        }[request.register_type]
        # pymodbus bounds each request by the client's timeout; ours is a safety net against
        # a transport that never returns.
        try:
            response = await asyncio.wait_for(
                read(request.address, count=request.count, device_id=self.device.unit_id),
                timeout=self.device.timeout_s * 2 + 1)
        except (TimeoutError, ModbusIOException) as exc:
            raise PollError("timeout", unreachable=not self.line.shared or
                            not client.connected, retryable=True) from exc
        except ConnectionException as exc:
            raise PollError("no connection", unreachable=True) from exc
        except ModbusException as exc:
            raise PollError(f"modbus error: {exc}") from exc
        if isinstance(response, ExceptionResponse) or response.isError():
            code = int(getattr(response, "exception_code", 0))
            raise PollError(f"modbus exception {code} ({_EXCEPTION_NAMES.get(code, 'unknown')})",
                            retryable=code in _RETRYABLE_CODES)
        out: dict[str, float | str | bool] = {}
        for point in request.points:
            offset = point.address - request.address
            try:
                if request.register_type.is_bit:
                    out[point.key] = bool(response.bits[offset])
                else:
                    regs = response.registers[offset: offset + point.count]
                    out[point.key] = decode_registers(regs, data_type=point.data_type,
                                                      order=point.order, bit=point.bit)
            except (IndexError, ValueError, struct.error, UnicodeDecodeError) as exc:
                raise PollError(f"short or undecodable response: {exc}") from exc
        return out


def _make_client(device: Device) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
    connection = device.connection
    # Retries and reconnections are ours (per request, with back-off), so that one dead device
    # cannot stall its neighbours: pymodbus is told to try once and never reconnect by itself.
    if isinstance(connection, TcpConnection):
        framer = FramerType.RTU if connection.type == "rtu_over_tcp" else FramerType.SOCKET
        return AsyncModbusTcpClient(connection.host, port=connection.port, framer=framer,
                                    timeout=device.timeout_s, retries=0, reconnect_delay=0)
    if isinstance(connection, SerialConnection):
        return AsyncModbusSerialClient(connection.port, framer=FramerType.RTU,
                                       baudrate=connection.baudrate, parity=connection.parity,
                                       bytesize=connection.bytesize,
                                       stopbits=connection.stopbits, timeout=device.timeout_s,
                                       retries=0, reconnect_delay=0)
    raise ValueError(f"device {device.id} has no Modbus connection")
