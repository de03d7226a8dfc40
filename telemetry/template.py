"""Device templates: a device model described once (register map or MQTT fields)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from telemetry.datatypes import ByteOrder, DataType, RegisterType
from telemetry.units import UnitError, parse_unit


def _known_unit(unit: str) -> str:
    try:
        parse_unit(unit)
    except UnitError as exc:
        raise ValueError(str(exc)) from None
    return unit


Key = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
UnitSymbol = Annotated[str, AfterValidator(_known_unit)]  # any symbol pint understands
ModelName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisterPoint(_Strict):
    """One value of a Modbus device: where it lives and how to turn registers into a quantity."""

    key: Key
    register_type: RegisterType
    address: int = Field(ge=0, le=65535, description="0-based protocol address")
    data_type: DataType = DataType.UINT16
    order: ByteOrder = ByteOrder.ABCD
    length: int = Field(default=0, ge=0, le=125, description="registers, for strings only")
    bit: int | None = Field(default=None, ge=0, le=15, description="bit of a register, for bool")
    scale: float = 1.0
    offset: float = 0.0
    unit: UnitSymbol = ""
    description: str = ""
    # SunSpec-style scale factor: the key of an int16 point of the same template whose value
    # `sf` multiplies this one by 10**sf (docs/gateway.md, "Scale factors and sentinels").
    scale_factor: Key | None = None
    # The raw value by which the device says "this register is not implemented" (SunSpec:
    # int16 -32768, uint16 65535, acc32 0): such a reading goes out bad, never as a number.
    not_implemented: int | None = None

    @model_validator(mode="after")
    def _coherent(self) -> RegisterPoint:
        if self.scale_factor is not None and self.data_type in (
                DataType.BOOL, DataType.STRING):
            raise ValueError("`scale_factor` is only for numeric points")
        if self.not_implemented is not None and not _fits(self.data_type,
                                                          self.not_implemented):
            raise ValueError(f"`not_implemented` {self.not_implemented} is not a value of "
                             f"{self.data_type}")
        if self.register_type.is_bit and self.data_type is not DataType.BOOL:
            raise ValueError(f"{self.register_type} points hold single bits: use data_type bool")
        if self.data_type is DataType.STRING and self.length == 0:
            raise ValueError("string points need `length` (in registers)")
        if self.bit is not None and self.data_type is not DataType.BOOL:
            raise ValueError("`bit` is only for bool points")
        return self

    @property
    def count(self) -> int:
        """Registers (or bits) this point occupies."""
        return self.length if self.data_type is DataType.STRING else self.data_type.registers

    def physical(self, raw: float, exponent: int = 0) -> float:
        """Apply scale factor, scale and offset: physical = raw × 10^exponent × scale + offset
        (`exponent`: the value of the `scale_factor` point, 0 without one)."""
        return raw * 10.0 ** exponent * self.scale + self.offset

    def raw(self, physical: float, exponent: int = 0) -> float:
        """Inverse of `physical`, for simulators."""
        return (physical - self.offset) / self.scale / 10.0 ** exponent


# A SunSpec scale factor outside this range is not a power of ten any meter uses; 0x8000
# (-32768) is sunssf's own "not implemented" (docs/sources.md#sunspec).
SCALE_FACTOR_RANGE = (-10, 10)
SCALE_FACTOR_NOT_IMPLEMENTED = -32768


def _fits(data_type: DataType, value: int) -> bool:
    ends = data_type.integer_range
    return ends is not None and ends[0] <= value <= ends[1]


class MqttField(_Strict):
    """One value of a local MQTT sensor: a field of its JSON payload."""

    key: Key
    path: str = Field(min_length=1, description="dotted path into the JSON payload; list "
                      "items by index (`emeters.0.power`); `$` for a bare value payload")
    unit: UnitSymbol = ""
    scale: float = 1.0
    offset: float = 0.0
    # Text or boolean states as numbers, e.g. Tasmota's {"ON": 1, "OFF": 0}.
    states: dict[str, float] = Field(default_factory=dict)
    description: str = ""

    def physical(self, raw: float) -> float:
        """Apply scale and offset: physical = raw × scale + offset."""
        return raw * self.scale + self.offset


class FingerprintCheck(_Strict):
    """What one point of this model reads on a running device: `dynamo modbus scan` takes a
    responder for this model when every check of the model's fingerprint holds."""

    point: Key
    min: float | None = None
    max: float | None = None
    why: str = Field(default="", description="where the bounds come from")

    @model_validator(mode="after")
    def _bounded(self) -> FingerprintCheck:
        if self.min is None and self.max is None:
            raise ValueError("a fingerprint check needs `min`, `max` or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("`min` is above `max`")
        return self

    def holds(self, value: float) -> bool:
        return ((self.min is None or value >= self.min)
                and (self.max is None or value <= self.max))


class DeviceTemplate(_Strict):
    """A device model. Real models cite the maker's document their map comes from."""

    model: ModelName
    maker: str = ""
    description: str = ""
    source: str = Field(default="", description="document the register map comes from")
    protocol: Literal["modbus", "mqtt"] = "modbus"
    points: tuple[RegisterPoint, ...] = ()
    topic: str = Field(default="", description="MQTT topic, `{name}` replaced per instance")
    fields: tuple[MqttField, ...] = ()
    # Registers that tell this model apart on a bus (bus discovery); empty: never proposed.
    fingerprint: tuple[FingerprintCheck, ...] = ()

    @model_validator(mode="after")
    def _coherent(self) -> DeviceTemplate:
        keys = [p.key for p in self.points] + [f.key for f in self.fields]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"duplicate point keys: {', '.join(duplicates)}")
        if self.protocol == "modbus" and (not self.points or self.fields):
            raise ValueError("a modbus template has `points` and no `fields`")
        if self.protocol == "mqtt" and (not self.fields or self.points or not self.topic):
            raise ValueError("an mqtt template has `topic` and `fields` and no `points`")
        numeric = {p.key for p in self.points if p.data_type is not DataType.STRING}
        unknown = [c.point for c in self.fingerprint if c.point not in numeric]
        if unknown:
            raise ValueError(f"fingerprint names no numeric point of this model: "
                             f"{', '.join(unknown)}")
        factored = [c.point for c in self.fingerprint
                    if isinstance(point := self.point(c.point), RegisterPoint)
                    and point.scale_factor is not None]
        if factored:
            raise ValueError(f"fingerprint points read alone by the scan cannot have a "
                             f"scale_factor: {', '.join(factored)}")
        vacuous = [c.point for c in self.fingerprint if _holds_for_any_value(self, c)]
        if vacuous:
            raise ValueError(f"fingerprint checks that any value of the register passes tell "
                             f"nothing: {', '.join(vacuous)}")
        _check_scale_factors(self.points)
        return self

    def point(self, key: str) -> RegisterPoint | MqttField | None:
        items: tuple[RegisterPoint | MqttField, ...] = (*self.points, *self.fields)
        for item in items:
            if item.key == key:
                return item
        return None


def _check_scale_factors(points: tuple[RegisterPoint, ...]) -> None:
    """A `scale_factor` names an int16 register of the same table that has none itself."""
    by_key = {p.key: p for p in points}
    for point in points:
        if point.scale_factor is None:
            continue
        factor = by_key.get(point.scale_factor)
        if factor is None:
            raise ValueError(f"{point.key}: scale_factor {point.scale_factor!r} is no point of "
                             f"this model")
        if factor.data_type is not DataType.INT16 or factor.scale_factor is not None:
            raise ValueError(f"{point.key}: scale_factor {factor.key!r} must be an int16 point "
                             f"without a scale factor of its own")
        if factor.register_type is not point.register_type:
            raise ValueError(f"{point.key}: scale_factor {factor.key!r} is in another table "
                             f"({factor.register_type})")


def _holds_for_any_value(template: DeviceTemplate, check: FingerprintCheck) -> bool:
    """True when every raw value of an integer point passes `check` (a bool point's check
    still says the device answers at that address, so it counts)."""
    point = template.point(check.point)
    ends = point.data_type.integer_range if isinstance(point, RegisterPoint) else None
    if point is None or ends is None:
        return False
    low, high = sorted(point.physical(end) for end in ends)
    return check.holds(low) and check.holds(high)
