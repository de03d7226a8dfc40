"""Bus discovery: who answers on a Modbus line, at which settings, and which template fits.

A technician connecting a meter rarely knows its unit id, baud rate and parity by heart. The
scan tries the usual settings and unit ids within a time bound, reads the device
identification (FC 43 / MEI 14) where the device answers it, and matches each responder
against the template library by the fingerprint each template states (telemetry/template.py,
`fingerprint:`): a responder is proposed a model only when every check of that model holds.

What counts as "someone is there": any Modbus answer, an exception response included (a device
that says "illegal address" to a probe is alive and at that unit id). Silence is the only
"nobody". A serial bus runs at one speed: once a setting has a responder, the other settings
are skipped unless asked (`every_setting`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType
from pymodbus.pdu import ExceptionResponse, ModbusPDU

from telemetry.datatypes import DataType, RegisterType
from telemetry.registers import decode_registers
from telemetry.template import DeviceTemplate, RegisterPoint
from telemetry.units import parse_unit

# The baud rates and parities meters and controllers ship with, most common first: 9600 8N1
# and 19200 8E1 (the Modbus serial line guide's default is even parity) cover most devices.
BAUDRATES = (9600, 19200, 38400, 115200, 4800, 2400, 57600)
PARITIES = ("N", "E", "O")
# Object ids of the "basic" device identification (Modbus Application Protocol V1.1b3, 6.21).
_BASIC_OBJECTS = {0: "vendor", 1: "product_code", 2: "revision"}
_REGULAR_OBJECTS = {3: "vendor_url", 4: "product_name", 5: "model_name"}
_NOBODY = frozenset({0x0A, 0x0B})


@dataclass(frozen=True, slots=True)
class Setting:
    """One way to talk to a line: Modbus TCP to `host:port`, or RTU on a serial port."""

    host: str = ""
    port: int = 502
    serial: str = ""
    baudrate: int = 9600
    parity: str = "N"

    def connection(self) -> dict[str, object]:
        """The `connection:` block of a gateway configuration for this setting."""
        if self.serial:
            return {"type": "rtu", "port": self.serial, "baudrate": self.baudrate,
                    "parity": self.parity}
        return {"type": "tcp", "host": self.host, "port": self.port}

    def __str__(self) -> str:
        if self.serial:
            return f"{self.serial} {self.baudrate} 8{self.parity}1"
        return f"tcp {self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Match:
    model: str
    checks: int  # fingerprint checks, all of which held


@dataclass(frozen=True, slots=True)
class Responder:
    setting: Setting
    unit_id: int
    identification: Mapping[str, str]
    matches: tuple[Match, ...]  # best first: more checks held is a tighter fit

    @property
    def model(self) -> str | None:
        """The one model that fits best, None when no template or several fit equally."""
        if not self.matches:
            return None
        best = [m for m in self.matches if m.checks == self.matches[0].checks]
        return best[0].model if len(best) == 1 else None


@dataclass(slots=True)
class ScanReport:
    responders: list[Responder] = field(default_factory=list)
    attempts: int = 0
    # Settings or unit ids left untried because the time bound was reached.
    untried: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


def parse_units(text: str) -> list[int]:
    """`1-10,247` → [1..10, 247]; every id within the Modbus range 1–247."""
    units: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise ValueError(f"not a unit id or range: {part!r}") from None
        if not 1 <= first <= last <= 247:
            raise ValueError(f"unit ids run from 1 to 247: {part!r}")
        units.extend(u for u in range(first, last + 1) if u not in units)
    if not units:
        raise ValueError("no unit id to try")
    return units


def serial_settings(port: str, baudrates: Iterable[int] = BAUDRATES,
                    parities: Iterable[str] = PARITIES) -> list[Setting]:
    return [Setting(serial=port, baudrate=b, parity=p) for b in baudrates for p in parities]


class _Line:
    """One open client for one setting, with the scan's short timeout and no retries."""

    def __init__(self, setting: Setting, timeout_s: float) -> None:
        self.setting = setting
        self.timeout_s = timeout_s
        self.client: AsyncModbusTcpClient | AsyncModbusSerialClient
        if setting.serial:
            self.client = AsyncModbusSerialClient(
                setting.serial, framer=FramerType.RTU, baudrate=setting.baudrate,
                parity=setting.parity, timeout=timeout_s, retries=0, reconnect_delay=0)
        else:
            self.client = AsyncModbusTcpClient(setting.host, port=setting.port,
                                               timeout=timeout_s, retries=0, reconnect_delay=0)

    async def open(self) -> bool:
        with contextlib.suppress(ModbusException, OSError, TimeoutError):
            await asyncio.wait_for(self.client.connect(), timeout=self.timeout_s * 4 + 1)
        return bool(self.client.connected)

    def close(self) -> None:
        self.client.close()

    async def ask(self, request: Callable[[], Awaitable[ModbusPDU]]) -> ModbusPDU | None:
        """The device's answer (an exception response included), None on silence. pymodbus
        drops a TCP connection after a timeout: it is opened again for the next question."""
        if not self.client.connected and not await self.open():
            return None
        try:
            answer = await asyncio.wait_for(request(), timeout=self.timeout_s * 2 + 1)
        except (ModbusException, TimeoutError, OSError):
            return None
        return answer if isinstance(answer, ModbusPDU) else None

    async def alive(self, unit: int) -> bool:
        client = self.client
        answer = await self.ask(lambda: client.read_holding_registers(0, count=1, device_id=unit))
        if answer is None:
            # a device with no holding register 0 may also ignore the request: try FC 04
            answer = await self.ask(
                lambda: client.read_input_registers(0, count=1, device_id=unit))
        # A Modbus TCP gateway answers for the devices behind it: exception 0x0A (path
        # unavailable) or 0x0B (target device failed to respond) means nobody at that id.
        if isinstance(answer, ExceptionResponse) and answer.exception_code in _NOBODY:
            return False
        return answer is not None

    async def identification(self, unit: int) -> dict[str, str]:
        found: dict[str, str] = {}
        for read_code, names in ((1, _BASIC_OBJECTS), (2, _REGULAR_OBJECTS)):
            answer = await self.ask(partial(self.client.read_device_information,
                                            read_code=read_code, object_id=0, device_id=unit))
            if answer is None or isinstance(answer, ExceptionResponse) or answer.isError():
                break
            information = getattr(answer, "information", {}) or {}
            for object_id, name in names.items():
                raw = information.get(object_id)
                if isinstance(raw, bytes | bytearray):
                    found[name] = raw.decode("utf-8", errors="replace").strip("\0 ").strip()
        return found

    async def value(self, unit: int, point: RegisterPoint) -> float | None:
        """The point's physical value, None when the device refuses or says nothing."""
        read = {
            RegisterType.COIL: self.client.read_coils,
            RegisterType.DISCRETE_INPUT: self.client.read_discrete_inputs,
            RegisterType.HOLDING: self.client.read_holding_registers,
            RegisterType.INPUT: self.client.read_input_registers,
        }[point.register_type]
        answer = await self.ask(lambda: read(point.address, count=point.count, device_id=unit))
        if answer is None or isinstance(answer, ExceptionResponse) or answer.isError():
            return None
        try:
            if point.register_type.is_bit:
                return float(bool(answer.bits[0]))
            raw = decode_registers(answer.registers[: point.count], data_type=point.data_type,
                                   order=point.order, bit=point.bit)
        except (IndexError, ValueError, TypeError):
            return None
        if isinstance(raw, str):
            return None
        return point.physical(float(raw))

    async def matches(self, unit: int, templates: Mapping[str, DeviceTemplate]) -> list[Match]:
        found = []
        for model, template in sorted(templates.items()):
            if not template.fingerprint or template.protocol != "modbus":
                continue
            held = 0
            for check in template.fingerprint:
                point = template.point(check.point)
                value = (await self.value(unit, point)
                         if isinstance(point, RegisterPoint) else None)
                if value is None or not check.holds(value):
                    break
                held += 1
            if held == len(template.fingerprint):
                found.append(Match(model=model, checks=held))
        return sorted(found, key=lambda m: (-m.checks, m.model))


async def scan(settings: Sequence[Setting], units: Sequence[int],
               templates: Mapping[str, DeviceTemplate], *, timeout_s: float = 0.3,
               time_limit_s: float = 60.0, every_setting: bool = False) -> ScanReport:
    """Try each setting and unit id in turn until the time bound; see the module docstring."""
    report = ScanReport()
    started = time.monotonic()

    def out_of_time() -> bool:
        return time.monotonic() - started >= time_limit_s

    for index, setting in enumerate(settings):
        if out_of_time():
            report.untried.extend(str(s) for s in settings[index:])
            break
        if report.responders and not every_setting:
            break  # a serial bus has one speed; a TCP host was given one port
        line = _Line(setting, timeout_s)
        try:
            if not await line.open():
                report.untried.append(f"{setting}: could not open")
                continue
            for position, unit in enumerate(units):
                if out_of_time():
                    report.untried.append(f"{setting}: unit ids {_ranges(units[position:])}")
                    break
                report.attempts += 1
                if not await line.alive(unit):
                    continue
                report.responders.append(Responder(
                    setting=setting, unit_id=unit,
                    identification=await line.identification(unit),
                    matches=tuple(await line.matches(unit, templates))))
        finally:
            line.close()
    report.elapsed_s = time.monotonic() - started
    return report


def _ranges(units: Sequence[int]) -> str:
    """[1, 2, 3, 7] → '1-3,7'."""
    parts: list[str] = []
    for unit in units:
        if parts and unit == int(parts[-1].split("-")[-1]) + 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{unit}"
        else:
            parts.append(str(unit))
    return ",".join(parts)


def fragment(report: ScanReport, templates: Mapping[str, DeviceTemplate], *,
             equipment: str) -> dict[str, object]:
    """A `devices:` block for a gateway configuration: each responder that one model fits,
    with every numeric point of the model recorded under a generic role (docs/roles.md),
    to be given its indicator role by whoever knows what the meter measures."""
    devices: list[dict[str, object]] = []
    for responder in report.responders:
        model = responder.model
        if model is None:
            continue
        name = f"{model.split('-')[0]}-{responder.unit_id}"
        template = templates[model]
        sensors = [{"id": f"{name}.{p.key}", "point": p.key,
                    "role": "measurement_total" if _cumulative(p) else "measurement"}
                   for p in template.points if p.data_type is not DataType.STRING]
        devices.append({"id": name, "template": model, "equipment": equipment,
                        "connection": responder.setting.connection(),
                        "unit_id": responder.unit_id, "sensors": sensors})
    return {"devices": devices}


def _cumulative(point: RegisterPoint) -> bool:
    """An energy or volume total (kWh, kvarh, m³) rather than a gauge."""
    if not point.unit:
        return False
    dimensionality = str(parse_unit(point.unit).dimensionality)
    energy_like = ("[mass] * [length] ** 2 / [time] ** 2", "[reactive_power] * [time]",
                   "[length] ** 3")
    return dimensionality in energy_like
