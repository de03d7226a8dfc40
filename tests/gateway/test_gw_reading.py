"""From raw value to reading: scale, offset, declared range, quality and reason."""

from __future__ import annotations

from gateway.reading import make_reading
from telemetry.payload import Quality
from telemetry.site import Sensor
from telemetry.template import RegisterPoint

# A 4-20 mA transmitter on an analog input: 4 mA = -20 degC, 20 mA = 80 degC.
POINT = RegisterPoint(key="ai0_ma", register_type="input", address=0, data_type="uint16",
                      scale=0.001, unit="mA")
SENSOR = Sensor(id="dryer.inlet_air_temp", point="ai0_ma", role="inlet_air_temp", scale=6.25,
                offset=-45, unit="degC", valid_min=-20, valid_max=80)


def test_in_range_is_good_and_converted() -> None:
    reading = make_reading(SENSOR, POINT, {"ai0_ma": 12000}, {})
    assert (reading.value, reading.unit, reading.quality) == (30.0, "degC", Quality.GOOD)


def test_out_of_range_is_kept_but_uncertain() -> None:
    # 2 mA: below the loop's 4 mA, a broken wire or a failing transmitter.
    reading = make_reading(SENSOR, POINT, {"ai0_ma": 2000}, {})
    assert reading.value == -32.5
    assert (reading.quality, reading.reason) == (Quality.UNCERTAIN, "out of range")
    high = make_reading(SENSOR, POINT, {"ai0_ma": 21000}, {})
    assert (high.quality, high.reason) == (Quality.UNCERTAIN, "out of range")


def test_unread_points_are_bad_with_the_failure() -> None:
    reading = make_reading(SENSOR, POINT, {}, {"ai0_ma": "timeout"})
    assert (reading.value, reading.quality, reading.reason) == (None, Quality.BAD, "timeout")
