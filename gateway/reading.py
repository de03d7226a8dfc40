"""A sensor's reading from a raw device value: scale, offset, physical range, quality.

Shared by the Modbus poller and the local MQTT sensors, so that both flag the same way.
"""

from __future__ import annotations

import math
from typing import cast, get_args

from telemetry.payload import NumberType, Quality, Reading
from telemetry.roles import ROLES, Kind
from telemetry.site import Sensor
from telemetry.template import (
    SCALE_FACTOR_NOT_IMPLEMENTED,
    SCALE_FACTOR_RANGE,
    MqttField,
    RegisterPoint,
)

_NUMBER_TYPES = frozenset(get_args(NumberType))


def counter_type(sensor: Sensor, point: RegisterPoint | MqttField) -> NumberType | None:
    """The register type a counter's value is read from, for the api to tell a roll-over from
    a reset (docs/indicators.md): the template's for a Modbus point, the sensor's `data_type`
    attribute for an MQTT field (whose payload says nothing of the device's register). None
    for anything but a counter, and where unknown."""
    role = ROLES.get(sensor.role)
    if role is None or role.kind is not Kind.COUNTER:
        return None
    declared = (str(point.data_type) if isinstance(point, RegisterPoint)
                else sensor.attributes.get("data_type"))
    return cast(NumberType, declared) if declared in _NUMBER_TYPES else None


def _exponent(point: RegisterPoint | MqttField, value: float | bool,
              raw: dict[str, float | str | bool], failures: dict[str, str]) -> int | str:
    """The power of ten a register point's `scale_factor` gives (0 without one), or why the
    value cannot be used: the device's "not implemented" sentinel, in the value or in its
    scale factor, or a scale factor that was not read or is no plausible exponent."""
    if not isinstance(point, RegisterPoint):
        return 0
    if point.not_implemented is not None and value == point.not_implemented:
        return "not implemented"
    if point.scale_factor is None:
        return 0
    factor = raw.get(point.scale_factor)
    if factor is None or isinstance(factor, str):
        return failures.get(point.scale_factor, "scale factor not read")
    if factor == SCALE_FACTOR_NOT_IMPLEMENTED:
        return "not implemented"
    low, high = SCALE_FACTOR_RANGE
    if not low <= factor <= high:
        return f"scale factor {factor:g} out of range"
    return int(factor)


def make_reading(sensor: Sensor, point: RegisterPoint | MqttField,
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
    exponent = _exponent(point, value, raw, failures)
    if isinstance(exponent, str):
        return Reading(sensor=sensor.id, value=None, unit=unit, quality=Quality.BAD,
                       reason=exponent)
    physical = (point.physical(float(value), exponent) if isinstance(point, RegisterPoint)
                else point.physical(float(value)))
    number = physical * sensor.scale + sensor.offset
    if not math.isfinite(number):
        return Reading(sensor=sensor.id, value=None, unit=unit, quality=Quality.BAD,
                       reason="not a number")
    if (sensor.valid_min is not None and number < sensor.valid_min) or (
            sensor.valid_max is not None and number > sensor.valid_max):
        return Reading(sensor=sensor.id, value=number, unit=unit,
                       quality=Quality.UNCERTAIN, reason="out of range",
                       type=counter_type(sensor, point))
    return Reading(sensor=sensor.id, value=number, unit=unit, type=counter_type(sensor, point))
