"""What an electricity meter shows besides the power and energy the physics computes.

A meter template has points no sensor uses (phase voltages and currents, frequency, the
total-energy register...). Served as zeros they would look broken, so they are derived from
the meter's own power and counters, assuming a balanced 230/400 V feeder at a fixed power
factor. Keys follow the project's templates (`voltage_l1_v`, `current_l2_a`, `power_l3_w`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

Source = Callable[[Mapping[str, float]], float]

NOMINAL_VOLTAGE_V = 230.0
NOMINAL_FREQUENCY_HZ = 50.0
POWER_FACTOR = 0.95

_PHASE_VOLTAGE = re.compile(r"^voltage(_l[123])?_v$")
_LINE_VOLTAGE = re.compile(r"^voltage_l[123]_l[123]_v$")
_PHASE_POWER = re.compile(r"^power_l[123]_w$")
_PHASE_CURRENT = re.compile(r"^current_l[123]_a$")


def _constant(value: float) -> Source:
    return lambda _values: value


def derived_source(key: str, resolved: Mapping[str, Source]) -> Source | None:
    """A source for meter point `key` from the meter's resolved points, or None."""
    total = resolved.get("total_power_w")
    if _PHASE_VOLTAGE.match(key):
        return _constant(NOMINAL_VOLTAGE_V)
    if _LINE_VOLTAGE.match(key):
        return _constant(round(NOMINAL_VOLTAGE_V * math.sqrt(3), 1))
    if key == "frequency_hz":
        return _constant(NOMINAL_FREQUENCY_HZ)
    if key == "power_factor":
        return _constant(POWER_FACTOR)
    if key in ("import_energy_kwh", "export_energy_kwh"):
        return _constant(0.0)  # a counter nothing flows through
    if key == "total_energy_kwh":
        imported = resolved.get("import_energy_kwh")
        exported = resolved.get("export_energy_kwh")
        return lambda values: ((imported(values) if imported else 0.0)
                               + (exported(values) if exported else 0.0))
    if total is None:
        return None
    if _PHASE_POWER.match(key):
        return lambda values: total(values) / 3.0
    if _PHASE_CURRENT.match(key):
        return lambda values: abs(total(values)) / 3.0 / (NOMINAL_VOLTAGE_V * POWER_FACTOR)
    if key == "current_a":
        return lambda values: abs(total(values)) / (NOMINAL_VOLTAGE_V * POWER_FACTOR)
    if key == "apparent_power_va":
        return lambda values: abs(total(values)) / POWER_FACTOR
    return None
