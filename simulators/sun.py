"""Sunshine on the dryer's roof: solar elevation and clear-sky irradiance.

Solar position from the usual declination / hour-angle formulas (no equation of time: the
error, a quarter of an hour at worst, does not matter here); clear-sky global irradiance from
Haurwitz's model, GHI = 1098 cos z exp(-0.057 / cos z) W/m2. Clouds are the dryer model's.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

#: Ariège (Foix), for the position of the sun.
LATITUDE_DEG = 42.97
LONGITUDE_DEG = 1.61


def solar_elevation_sin(when: datetime) -> float:
    """Sine of the sun's elevation at `when` (negative at night)."""
    utc = when.astimezone(UTC)
    day = utc.timetuple().tm_yday
    declination = math.radians(23.44) * math.sin(2 * math.pi * (284 + day) / 365.0)
    solar_hour = utc.hour + utc.minute / 60 + utc.second / 3600 + LONGITUDE_DEG / 15.0
    hour_angle = math.radians(15.0 * (solar_hour - 12.0))
    lat = math.radians(LATITUDE_DEG)
    return (math.sin(lat) * math.sin(declination)
            + math.cos(lat) * math.cos(declination) * math.cos(hour_angle))


def clear_sky_irradiance_w_m2(when: datetime) -> float:
    """Global irradiance under a clear sky (Haurwitz), 0 at night."""
    cos_zenith = solar_elevation_sin(when)
    if cos_zenith <= 0.01:
        return 0.0
    return 1098.0 * cos_zenith * math.exp(-0.057 / cos_zenith)
