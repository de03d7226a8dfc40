"""Moist air: the psychrometric relations the dryer's physics needs.

Magnus formula for the saturation vapour pressure over water (Alduchov & Eskridge 1996
coefficients), humidity ratio from partial pressure, adiabatic saturation found by bisection.
"""

from __future__ import annotations

import math

#: Air pressure at the dryer (about 400 m above sea level in the Ariège valley).
PRESSURE_PA = 96_500.0
CP_DRY_AIR_J_KG_K = 1006.0
CP_VAPOUR_J_KG_K = 1860.0
LATENT_HEAT_J_KG = 2.45e6  # water evaporation near 20 degC
R_DRY_AIR_J_KG_K = 287.05


def saturation_pressure_pa(temp_c: float) -> float:
    """Saturation vapour pressure over liquid water (Magnus)."""
    return 610.94 * math.exp(17.625 * temp_c / (temp_c + 243.04))


def humidity_ratio(temp_c: float, rh_pct: float, *, pressure_pa: float = PRESSURE_PA) -> float:
    """kg of water vapour per kg of dry air."""
    p_w = max(0.0, min(rh_pct, 100.0)) / 100.0 * saturation_pressure_pa(temp_c)
    return 0.622 * p_w / (pressure_pa - p_w)


def relative_humidity(temp_c: float, ratio: float, *, pressure_pa: float = PRESSURE_PA) -> float:
    """Relative humidity (%) of air at `temp_c` holding `ratio` kg/kg, capped at 100 %."""
    p_w = ratio * pressure_pa / (0.622 + ratio)
    return min(100.0, 100.0 * p_w / saturation_pressure_pa(temp_c))


def saturation_ratio(temp_c: float, *, pressure_pa: float = PRESSURE_PA) -> float:
    """Humidity ratio of saturated air at `temp_c`."""
    return humidity_ratio(temp_c, 100.0, pressure_pa=pressure_pa)


def dew_point_c(temp_c: float, rh_pct: float) -> float:
    """Dew point of air at `temp_c` and `rh_pct` (Magnus inverted)."""
    gamma = math.log(max(rh_pct, 0.1) / 100.0) + 17.625 * temp_c / (243.04 + temp_c)
    return 243.04 * gamma / (17.625 - gamma)


def adiabatic_saturation_c(temp_c: float, ratio: float) -> float:
    """Temperature air reaches when it evaporates water until saturated (≈ wet bulb).

    Solves T_in - T_s = (x_s(T_s) - x_in) * L / c_p by bisection: the left side grows and the
    right side shrinks as T_s falls, so the root is unique and bracketed.
    """
    cp = CP_DRY_AIR_J_KG_K + CP_VAPOUR_J_KG_K * ratio
    lo, hi = temp_c - 40.0, temp_c
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        if temp_c - mid - (saturation_ratio(mid) - ratio) * LATENT_HEAT_J_KG / cp > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def density_kg_m3(temp_c: float, *, pressure_pa: float = PRESSURE_PA) -> float:
    """Density of (dry) air, enough for a fan's mass flow."""
    return pressure_pa / (R_DRY_AIR_J_KG_K * (temp_c + 273.15))


def specific_volume_m3_kg(temp_c: float, ratio: float, *,
                          pressure_pa: float = PRESSURE_PA) -> float:
    """Volume of moist air per kg of its dry air: R_da × T × (1 + 1.6078 W) / p (ideal gas;
    1.6078 is the ratio of the molar masses of dry air and water)."""
    return R_DRY_AIR_J_KG_K * (temp_c + 273.15) * (1 + 1.607858 * ratio) / pressure_pa


def isenthalpic_temp_c(temp_c: float, ratio_in: float, ratio_out: float) -> float:
    """Temperature of air that went from (`temp_c`, `ratio_in`) to `ratio_out` keeping its
    enthalpy per kg of dry air, h = 1.006 t + W (2501 + 1.86 t) kJ/kg (an adiabatic bed)."""
    h = 1.006 * temp_c + ratio_in * (2501.0 + 1.86 * temp_c)
    return (h - 2501.0 * ratio_out) / (1.006 + 1.86 * ratio_out)
