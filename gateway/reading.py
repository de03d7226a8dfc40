"""A sensor's reading from a raw device value: scale, offset, physical range, quality.

Shared by the Modbus poller and the local MQTT sensors, so that both flag the same way.
"""

from __future__ import annotations

import math

from telemetry.payload import Quality, Reading
from telemetry.site import Sensor
from telemetry.template import MqttField, RegisterPoint


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
    number = point.physical(float(value)) * sensor.scale + sensor.offset
    if not math.isfinite(number):
        return Reading(sensor=sensor.id, value=None, unit=unit, quality=Quality.BAD,
                       reason="not a number")
    if (sensor.valid_min is not None and number < sensor.valid_min) or (
            sensor.valid_max is not None and number > sensor.valid_max):
        return Reading(sensor=sensor.id, value=number, unit=unit,
                       quality=Quality.UNCERTAIN, reason="out of range")
    return Reading(sensor=sensor.id, value=number, unit=unit)
