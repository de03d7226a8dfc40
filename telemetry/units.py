"""The one units registry of the project (pint), and the checks and conversions built on it."""

from __future__ import annotations

from functools import lru_cache

import pint

UNITS: pint.UnitRegistry[float] = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
# Counted things (units packed, rejects) are dimensionless counts.
UNITS.define("unit_count = [] = units = pcs")
# Reactive power and energy get a dimension of their own: a kvarh counter must never pass for
# a kWh one (pint would otherwise take var as a watt). IEC 60050-131-11-44 names the var.
UNITS.define("volt_ampere_reactive = [reactive_power] = var = VAr = VAR")
UNITS.define("var_hour = volt_ampere_reactive * hour = varh = VArh")


class UnitError(ValueError):
    """A unit string pint does not understand."""


@lru_cache(maxsize=256)
def parse_unit(symbol: str) -> pint.Unit:
    """Parse a unit symbol as written in templates and payloads ("kWh", "°C", "%", "m³/h")."""
    try:
        return UNITS.Unit(symbol) if symbol else UNITS.dimensionless
    # pint's parser answers some malformed symbols with an AssertionError or a KeyError of its
    # tokenizer rather than one of its own errors: all of them mean "not a unit".
    except (pint.errors.PintError, ValueError, AttributeError, TypeError, AssertionError,
            KeyError) as exc:
        raise UnitError(f"unknown unit {symbol!r}") from exc


def same_dimension(symbol: str, reference: str) -> bool:
    """True when `symbol` measures the same kind of quantity as `reference`."""
    return parse_unit(symbol).dimensionality == parse_unit(reference).dimensionality


def convert(value: float, *, from_unit: str, to_unit: str) -> float:
    """Convert a magnitude between two units of the same dimension."""
    if from_unit == to_unit:
        return value
    quantity = UNITS.Quantity(value, parse_unit(from_unit))
    return float(quantity.to(parse_unit(to_unit)).magnitude)
