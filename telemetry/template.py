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

    @model_validator(mode="after")
    def _coherent(self) -> RegisterPoint:
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

    def physical(self, raw: float) -> float:
        """Apply scale and offset: physical = raw × scale + offset."""
        return raw * self.scale + self.offset

    def raw(self, physical: float) -> float:
        """Inverse of `physical`, for simulators."""
        return (physical - self.offset) / self.scale


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
        return self

    def point(self, key: str) -> RegisterPoint | MqttField | None:
        items: tuple[RegisterPoint | MqttField, ...] = (*self.points, *self.fields)
        for item in items:
            if item.key == key:
                return item
        return None
