"""Roles: what a sensor *means* for indicators and alerts, independent of the device behind it.

Indicators and alert rules speak in roles and sensor ids, never in register addresses. Each role
says which physical dimension its readings have (checked against the point's unit when a
configuration loads) and whether it is a cumulative counter, a gauge or a state.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    COUNTER = "counter"  # cumulative, never decreasing but for resets and roll-overs
    GAUGE = "gauge"  # an instantaneous value
    STATE = "state"  # a discrete state (0/1, or an enumerated code)


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    kind: Kind
    reference_unit: str  # any unit of the right dimension; readings are stored in their own unit
    description: str
    # The generic roles record a point that no indicator reads: any unit pint understands is
    # taken (still parsed, so a typo is refused), whatever its dimension.
    any_unit: bool = False


_ROLES = (
    # energy counters
    Role("grid_import_energy", Kind.COUNTER, "kWh", "electricity imported from the grid"),
    Role("grid_export_energy", Kind.COUNTER, "kWh", "electricity exported to the grid"),
    Role("pv_energy", Kind.COUNTER, "kWh", "photovoltaic production"),
    Role("electric_energy", Kind.COUNTER, "kWh", "electricity consumed by the equipment"),
    Role("solar_heat_energy", Kind.COUNTER, "kWh", "heat delivered by solar air collectors"),
    Role("fuel_energy", Kind.COUNTER, "kWh", "backup fuel burnt, as energy (PCI)"),
    Role("fuel_volume", Kind.COUNTER, "L", "backup fuel burnt, as volume"),
    Role("compressed_air_volume", Kind.COUNTER, "m**3", "compressed air consumed"),
    Role("heat_energy", Kind.COUNTER, "kWh", "heat delivered through a heat meter (water circuit)"),
    # power gauges
    Role("electric_power", Kind.GAUGE, "W", "electrical power drawn by the equipment"),
    Role("fan_power", Kind.GAUGE, "W", "fan electrical power"),
    Role("compressor_power", Kind.GAUGE, "W", "compressor electrical power"),
    Role("pv_power", Kind.GAUGE, "W", "photovoltaic power"),
    Role("grid_power", Kind.GAUGE, "W", "net grid power, import positive"),
    Role("solar_heat_power", Kind.GAUGE, "W", "heat power from solar air collectors"),
    Role("irradiance", Kind.GAUGE, "W/m**2", "solar irradiance on the collector plane"),
    Role("heat_power", Kind.GAUGE, "W", "heat power through a heat meter"),
    Role("flow_temp", Kind.GAUGE, "degC", "water temperature in the flow (supply) pipe"),
    Role("return_temp", Kind.GAUGE, "degC", "water temperature in the return pipe"),
    Role("volume_flow", Kind.GAUGE, "m**3/h", "liquid volume flow (a heat meter's water)"),
    # temperatures, humidities, pressures
    Role("inlet_air_temp", Kind.GAUGE, "degC", "drying air temperature at the inlet"),
    Role("outlet_air_temp", Kind.GAUGE, "degC", "air temperature leaving the hay"),
    Role("ambient_temp", Kind.GAUGE, "degC", "outdoor air temperature"),
    Role("cabinet_air_temp", Kind.GAUGE, "degC", "air temperature inside the freezer"),
    Role("product_core_temp", Kind.GAUGE, "degC", "temperature at the product core"),
    Role("evaporator_temp", Kind.GAUGE, "degC", "evaporator temperature"),
    Role("inlet_air_humidity", Kind.GAUGE, "percent", "drying air relative humidity"),
    Role("outlet_air_humidity", Kind.GAUGE, "percent", "outlet air relative humidity"),
    Role("ambient_humidity", Kind.GAUGE, "percent", "outdoor relative humidity"),
    Role("hay_moisture", Kind.GAUGE, "percent", "hay moisture, wet basis"),
    Role("forage_temperature", Kind.GAUGE, "degC",
         "temperature inside stored forage (a probe in a bale; set the sensor's `location`)"),
    Role("airflow", Kind.GAUGE, "m**3/h",
         "drying airflow, a volume flow at the inlet air's state (m³/h, m³/s, L/s…)"),
    Role("evaporator_pressure", Kind.GAUGE, "bar", "evaporating pressure"),
    Role("condenser_pressure", Kind.GAUGE, "bar", "condensing pressure"),
    Role("refrigerant_leak", Kind.GAUGE, "ppm", "refrigerant concentration at the leak detector"),
    Role("batch_mass", Kind.GAUGE, "kg", "mass of the batch on the scale"),
    # states
    Role("door_open", Kind.STATE, "", "door contact, 1 when open"),
    Role("compressor_running", Kind.STATE, "", "compressor running, 1 when on"),
    Role("line_state", Kind.STATE, "", "line state: 0 stopped, 1 running, 2 fault"),
    Role("fan_running", Kind.STATE, "", "fan running, 1 when on"),
    # production counters
    Role("units_packed", Kind.COUNTER, "units", "good units packed"),
    Role("units_rejected", Kind.COUNTER, "units", "units rejected"),
    Role("material_consumed", Kind.COUNTER, "kg", "packaging material consumed (set `material`)"),
    Role("line_speed", Kind.GAUGE, "units/min", "line speed"),
    # electrical quality (a meter's per-phase registers: set the sensor's `phase` attribute)
    Role("voltage", Kind.GAUGE, "V", "phase-to-neutral voltage"),
    Role("line_voltage", Kind.GAUGE, "V", "phase-to-phase voltage"),
    Role("current", Kind.GAUGE, "A", "phase or neutral current"),
    Role("phase_power", Kind.GAUGE, "W", "active power of one phase"),
    Role("frequency", Kind.GAUGE, "Hz", "supply frequency"),
    Role("power_factor", Kind.GAUGE, "", "power factor, -1 to 1 (the sign as the meter gives it)"),
    Role("reactive_power", Kind.GAUGE, "var", "reactive power"),
    Role("apparent_power", Kind.GAUGE, "VA", "apparent power"),
    Role("reactive_energy", Kind.COUNTER, "kvarh", "reactive energy (never counted as kWh)"),
    Role("voltage_thd", Kind.GAUGE, "percent", "total harmonic distortion of the voltage"),
    Role("current_thd", Kind.GAUGE, "percent", "total harmonic distortion of the current"),
    # generic: a point recorded for people to read, with its own unit, that no indicator uses
    Role("measurement", Kind.GAUGE, "", "any instantaneous value, in its own unit", any_unit=True),
    Role("measurement_total", Kind.COUNTER, "", "any cumulative count (running hours, litres…), "
         "in its own unit", any_unit=True),
)

ROLES: dict[str, Role] = {role.name: role for role in _ROLES}

# Roles whose sensors are many of a kind and told apart by where they are: a sensor of one of
# these must have a `location` (telemetry/site.py).
LOCATED_ROLES = frozenset({"forage_temperature"})

# Roles measured per phase: a sensor of one of these may say which in its `phase` attribute.
PHASED_ROLES = frozenset({"voltage", "line_voltage", "current", "phase_power", "voltage_thd",
                          "current_thd"})
PHASES = frozenset({"L1", "L2", "L3", "N", "L1-L2", "L2-L3", "L3-L1"})

ENERGY_ROLES = frozenset(
    name for name, role in ROLES.items()
    if role.kind is Kind.COUNTER and role.reference_unit == "kWh"
)
