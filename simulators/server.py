"""Serve a machine's simulation as the Modbus devices of a gateway configuration.

The register image of each device is built from the *same* template the gateway decodes
with: every point of the template gets a source (a function of the truth), and every read
encodes the sources with `telemetry.registers.encode_value` after `RegisterPoint.raw` - so
addresses, data types, word orders and scales live in the templates and nowhere else.

Where a point's value comes from, first match wins:
1. a sensor of the site configuration on that point whose role the model binds: the truth
   variable, taken back through the sensor's own scale/offset (a 4-20 mA span);
2. the model's `point_fallbacks` (`template.point` -> variable);
3. a truth variable named like the point key (the project's simulated PLCs);
4. what the meter would show anyway (`simulators.feeder`): voltages, phase values, totals;
5. zero.
A SunSpec scale-factor point (named by other points' `scale_factor`) left without a source by
1-3 shows the finest exponent at which the values it scales fit their registers.

This is pymodbus 3.16's simulator API: one `SimDevice` per unit id with its four tables kept
apart, and an `action` coroutine, called on every access, that advances the physics to the
instant of the read and rewrites the registers in place.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pint import DimensionalityError
from pymodbus import ModbusDeviceIdentification
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.base import ModbusBaseServer
from pymodbus.simulator import DataType as SimDataType
from pymodbus.simulator import SimData, SimDevice
from pymodbus.simulator.simcore import SimCore

from simulators.feeder import Source, derived_source
from simulators.simulation import Simulation
from telemetry.datatypes import DataType, RegisterType
from telemetry.registers import encode_value
from telemetry.roles import ROLES
from telemetry.site import Device, GatewayConfig
from telemetry.template import SCALE_FACTOR_RANGE, DeviceTemplate, RegisterPoint
from telemetry.units import UnitError, convert

log = logging.getLogger(__name__)

_TABLE_OF_FUNCTION = {
    1: RegisterType.COIL, 5: RegisterType.COIL, 15: RegisterType.COIL,
    2: RegisterType.DISCRETE_INPUT,
    3: RegisterType.HOLDING, 6: RegisterType.HOLDING, 16: RegisterType.HOLDING,
    22: RegisterType.HOLDING, 23: RegisterType.HOLDING,
    4: RegisterType.INPUT,
}


def encode_point(point: RegisterPoint, physical: float, exponent: int = 0) -> list[int]:
    """Registers a device shows for the physical value of `point`.

    Integers are rounded and saturate at their type's limits, as a device's would. A coil or
    discrete input gives one 0/1 bit; a bool in a register gives the register with only its
    bit set (the server merges the bits that share a register). `exponent` is the value the
    point's `scale_factor` register shows (SunSpec: raw = physical / 10**exponent).
    """
    data_type = point.data_type
    if data_type is DataType.BOOL:
        on = physical >= 0.5
        if point.register_type.is_bit:
            return [1 if on else 0]
        return [(1 << (point.bit or 0)) if on else 0]
    if data_type is DataType.STRING:
        return encode_value("", data_type=data_type, length=point.length)
    raw = point.raw(physical, exponent)
    if data_type in (DataType.FLOAT32, DataType.FLOAT64):
        return encode_value(raw, data_type=data_type, order=point.order)
    ends = data_type.integer_range
    assert ends is not None, data_type
    low, high = ends
    number = min(high, max(low, round(raw))) if math.isfinite(raw) else 0
    return encode_value(number, data_type=data_type, order=point.order)


@dataclass(frozen=True, slots=True)
class _Slot:
    point: RegisterPoint
    source: Source


class _DeviceImage:
    """One device of the configuration: its tables, their sources, its pymodbus action."""

    def __init__(self, *, device: Device, template: DeviceTemplate, simulation: Simulation) -> None:
        self.device = device
        self.template = template
        self._simulation = simulation
        sources = _resolve_sources(device, template, simulation)
        self.tables: dict[RegisterType, list[_Slot]] = {}
        for point in template.points:
            self.tables.setdefault(point.register_type, []).append(
                _Slot(point, sources[point.key]))

    def sim_device(self) -> SimDevice:
        """A fresh pymodbus SimDevice for this device (one per server)."""
        # Four tables kept apart (coils, discrete inputs, holding, input), as real devices do.
        blocks = (self._block(RegisterType.COIL), self._block(RegisterType.DISCRETE_INPUT),
                  self._block(RegisterType.HOLDING), self._block(RegisterType.INPUT))
        return SimDevice(id=self.device.unit_id, simdata=blocks, action=self._action)

    def _block(self, table: RegisterType) -> list[SimData]:
        slots = self.tables.get(table, [])
        if table.is_bit:
            if not slots:
                # pymodbus needs every table; the action refuses access to this placeholder.
                return [SimData(address=0, values=[False] * 16, datatype=SimDataType.BITS)]
            first = min(s.point.address for s in slots)
            last = max(s.point.address for s in slots)
            return [SimData(address=first, values=[False] * (last - first + 1),
                            datatype=SimDataType.BITS)]
        if not slots:
            return [SimData(address=0, datatype=SimDataType.INVALID)]
        # One block from the first to the last register: unused registers in between read as
        # zero, as on real meters, so that a gateway may read across small gaps in one request.
        first = min(s.point.address for s in slots)
        end = max(s.point.address + s.point.count for s in slots)
        return [SimData(address=first, count=end - first, values=0,
                        datatype=SimDataType.REGISTERS, readonly=True)]

    async def _action(
        self,
        function_code: int,
        start_address: int,
        _address: int,
        _count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if set_values is not None:
            return ExcCodes.ILLEGAL_ADDRESS  # read-only device: refuse writes
        table = _TABLE_OF_FUNCTION.get(function_code)
        slots = self.tables.get(table) if table is not None else None
        if not slots or table is None:
            return ExcCodes.ILLEGAL_ADDRESS
        values = self._simulation.advance()
        if table.is_bit:
            _fill_bits(slots, start_address, registers, values)
        else:
            _fill_registers(slots, start_address, registers, values)
        return None


def _fill_registers(slots: Sequence[_Slot], start_address: int, registers: list[int],
                    values: Mapping[str, float]) -> None:
    image: dict[int, int] = {}
    by_key = {slot.point.key: slot for slot in slots}
    for slot in slots:
        point = slot.point
        encoded = encode_point(point, slot.source(values),
                               _exponent(by_key.get(point.scale_factor or ""), values))
        if point.data_type is DataType.BOOL:
            mask = 1 << (point.bit or 0)
            word = image.get(point.address, 0)
            image[point.address] = word | mask if encoded[0] else word & ~mask
        else:
            for i, word in enumerate(encoded):
                image[point.address + i] = word
    for address, word in image.items():
        registers[address - start_address] = word


def _exponent(factor: _Slot | None, values: Mapping[str, float]) -> int:
    """What a scale-factor register shows: its source, rounded, within the plausible powers
    of ten (0 for a point without a scale factor)."""
    if factor is None:
        return 0
    low, high = SCALE_FACTOR_RANGE
    number = factor.source(values)
    return min(high, max(low, round(number))) if math.isfinite(number) else 0


def _fill_bits(slots: Sequence[_Slot], start_address: int, registers: list[int],
               values: Mapping[str, float]) -> None:
    # Bit tables are packed 16 to a register, bit 0 first; start_address counts registers.
    for slot in slots:
        index, bit = divmod(slot.point.address, 16)
        index -= start_address
        if encode_point(slot.point, slot.source(values))[0]:
            registers[index] |= 1 << bit
        else:
            registers[index] &= ~(1 << bit)


def _constant(value: float) -> Source:
    return lambda _values: value


def _variable(name: str) -> Source:
    return lambda values: values[name]


def _through_sensor(name: str, scale: float, offset: float, *, from_unit: str = "",
                    to_unit: str = "") -> Source:
    # The gateway computes value = template value x scale + offset: invert it. A model's
    # variable is in its role's reference unit (kWh, W…); a sensor may read in another unit of
    # the same dimension (a SunSpec inverter's Wh): convert first.
    if from_unit and to_unit and from_unit != to_unit:
        try:
            convert(1.0, from_unit=from_unit, to_unit=to_unit)
        except (UnitError, DimensionalityError):
            pass  # refused when a configuration loads; a hand-built one keeps the raw number
        else:
            return lambda values: (convert(values[name], from_unit=from_unit, to_unit=to_unit)
                                   - offset) / scale
    return lambda values: (values[name] - offset) / scale


def _resolve_sources(device: Device, template: DeviceTemplate,
                     simulation: Simulation) -> dict[str, Source]:
    model = simulation.model
    names = set(simulation.truth.names)
    resolved: dict[str, Source] = {}
    for point in template.points:
        for sensor in device.sensors:
            if sensor.point != point.key or sensor.scale == 0:
                continue
            variable = model.variable_for(role=sensor.role, attributes=sensor.attributes,
                                          location=sensor.location)
            if variable is not None and variable in names:
                role = ROLES.get(sensor.role)
                resolved[point.key] = _through_sensor(
                    variable, sensor.scale, sensor.offset,
                    from_unit=role.reference_unit if role is not None else "",
                    to_unit=sensor.unit if sensor.unit is not None else point.unit)
                break
        else:
            fallback = model.point_fallbacks.get(f"{template.model}.{point.key}")
            if fallback is None and point.key in names:
                fallback = point.key
            if fallback is not None and fallback in names:
                resolved[point.key] = _variable(fallback)
    factors = {p.scale_factor for p in template.points if p.scale_factor}
    for point in template.points:
        if point.key not in resolved and point.key not in factors:
            resolved[point.key] = derived_source(point.key, resolved) or _constant(0.0)
    for key in factors:
        if key not in resolved:
            resolved[key] = _fitting_exponent(
                [(p, resolved[p.key]) for p in template.points if p.scale_factor == key])
    return resolved


def _fitting_exponent(scaled: Sequence[tuple[RegisterPoint, Source]]) -> Source:
    """A SunSpec scale factor as an inverter shows it: the finest power of ten, from 10^-2 up,
    at which every value it scales fits its integer register (a 36 kW inverter's int16 power
    needs 10^1). Computed at each read, like the values, so both come from one instant."""
    low, high = SCALE_FACTOR_RANGE

    def fits(point: RegisterPoint, value: float, exponent: int) -> bool:
        ends = point.data_type.integer_range
        raw = point.raw(value, exponent)
        return ends is None or not math.isfinite(raw) or ends[0] <= round(raw) <= ends[1]

    def source(values: Mapping[str, float]) -> float:
        physical = [(point, value(values)) for point, value in scaled]
        for exponent in range(max(low, -2), high + 1):
            if all(fits(point, number, exponent) for point, number in physical):
                return float(exponent)
        return float(high)

    return source


class _KnownUnitsOnly(SimCore):
    """SimCore that reports unknown unit ids the way pymodbus' request handler expects.

    pymodbus 3.16's SimCore raises KeyError for a unit id it does not know, which the server
    logs as a crash and answers with "device failure"; NoSuchIdException gets the proper
    answer: exception 0x0B on TCP, silence on a serial line (ignore_missing_devices).
    """

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        if device_id not in self.devices:
            raise NoSuchIdException(f"unit id {device_id}")
        return await super().async_getValues(device_id, func_code, address, count)

    async def async_setValues(
        self, device_id: int, func_code: int, address: int, values: list[int] | list[bool]
    ) -> ExcCodes | None:
        if device_id not in self.devices:
            raise NoSuchIdException(f"unit id {device_id}")
        return await super().async_setValues(device_id, func_code, address, values)


class MachineServer:
    """Serves the Modbus devices of one gateway configuration from one simulation."""

    def __init__(self, simulation: Simulation, config: GatewayConfig) -> None:
        self.simulation = simulation
        self.config = config
        self._images: list[_DeviceImage] = []
        seen: dict[int, str] = {}
        for device in config.devices:
            template = config.templates.get(device.template)
            if template is None or template.protocol != "modbus":
                continue
            if device.unit_id in seen:
                raise ValueError(f"devices {seen[device.unit_id]} and {device.id} share unit id "
                                 f"{device.unit_id}: one simulator cannot serve both")
            seen[device.unit_id] = device.id
            self._images.append(_DeviceImage(device=device, template=template,
                                             simulation=simulation))
        if not self._images:
            raise ValueError(f"gateway {config.gateway} has no Modbus device to simulate")
        self._servers: list[ModbusBaseServer] = []

    @property
    def unit_ids(self) -> dict[str, int]:
        """Device id -> unit id of every device served."""
        return {image.device.id: image.device.unit_id for image in self._images}

    def _devices(self) -> list[SimDevice]:
        return [image.sim_device() for image in self._images]

    async def start_tcp(self, *, host: str, port: int) -> int:
        """Listen for Modbus TCP on host:port (0 = any free port); returns the bound port."""
        devices = self._devices()
        server = ModbusTcpServer(devices, address=(host, port), identity=self._identity())
        server.context = _KnownUnitsOnly(devices)
        await server.serve_forever(background=True)
        self._servers.append(server)
        sockets = getattr(server.transport, "sockets", None) or ()
        bound = int(sockets[0].getsockname()[1]) if sockets else port
        log.info("%s: Modbus TCP on %s:%d, units %s", self.config.gateway, host, bound,
                 sorted(self.unit_ids.values()))
        return bound

    async def start_serial(self, *, port: str, baudrate: int = 9600, parity: str = "N",
                           bytesize: int = 8, stopbits: int = 1) -> None:
        """Serve Modbus RTU on a serial device (e.g. one end of a pseudo-terminal pair)."""
        devices = self._devices()
        server = ModbusSerialServer(devices, identity=self._identity(), port=port,
                                    baudrate=baudrate, parity=parity,
                                    bytesize=bytesize, stopbits=stopbits,
                                    ignore_missing_devices=True)
        server.context = _KnownUnitsOnly(devices)
        await server.serve_forever(background=True)
        self._servers.append(server)
        log.info("%s: Modbus RTU on %s at %d baud", self.config.gateway, port, baudrate)

    def _identity(self) -> ModbusDeviceIdentification:
        """What FC 43/14 answers (one identity per listener in pymodbus, whatever the unit id):
        the simulator says what it is, so a bus scan never takes it for a real device."""
        return ModbusDeviceIdentification(info_name={  # type: ignore[no-untyped-call]
            "VendorName": "DYNAMO project (simulator)",
            "ProductCode": f"dynamo-sim-{self.config.gateway}",
            "MajorMinorRevision": "1.0",
            "ProductName": "DYNAMO equipment simulator",
        })

    async def stop(self) -> None:
        """Close every listener."""
        servers, self._servers = self._servers, []
        for server in servers:
            # pymodbus 3.16 leaves shutdown() unannotated; it returns None.
            await server.shutdown()  # type: ignore[no-untyped-call]

