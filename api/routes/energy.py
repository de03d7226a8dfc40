"""Energy of an equipment over a period, from its cumulative meter counters."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.accounting.energy import counter_delta, counter_wrap, named_drops
from api.deps import Equipment, Settings, Store
from api.periods import PeriodError, explicit_period
from api.schemas import EnergyOut, SensorEnergy
from telemetry.roles import ENERGY_ROLES
from telemetry.units import convert

router = APIRouter(tags=["energy"])

# The role whose counter is "what this equipment consumed", in order of preference.
_CONSUMPTION_ROLES = ("electric_energy", "grid_import_energy")


@router.get("/sites/{site}/equipment/{equipment}/energy", response_model=EnergyOut)
def energy(
    equipment: Equipment,
    store: Store,
    settings: Settings,
    start: Annotated[datetime, Query(description="period start, inclusive, with a time zone")],
    end: Annotated[datetime, Query(description="period end, exclusive, with a time zone")],
) -> EnergyOut:
    """Energy per counter role over `[start, end)`: counter difference, roll-overs and resets
    handled and named."""
    try:
        explicit_period(start=start, end=end)
    except PeriodError as exc:
        raise HTTPException(422, str(exc)) from None
    if end - start > timedelta(days=31):
        raise HTTPException(422, "this route reads raw counters (31 days at most); use "
                                 "energy-by-source, which sums the hourly rollups")
    around = timedelta(seconds=settings.boundary_lookaround_s)
    sensors: list[SensorEnergy] = []
    missing: list[str] = []
    by_role: dict[str, float] = {}
    for sensor in equipment.sensors:
        if sensor.role.name not in ENERGY_ROLES:
            continue
        found = store.counter_series(site=equipment.site, sensor=sensor.id, start=start,
                                     end=end, around=around)
        samples, unit = found.samples, found.unit
        result = counter_delta(samples, start_ms=int(start.timestamp() * 1000),
                               end_ms=int(end.timestamp() * 1000),
                               wrap=counter_wrap(sensor, found.data_type))
        if result is None:
            missing.append(sensor.id)
            continue
        kwh = convert(result.delta, from_unit=unit or sensor.unit, to_unit="kWh")
        sensors.append(SensorEnergy(
            sensor=sensor.id, role=sensor.role.name, energy_kwh=kwh, readings=result.readings,
            resets=result.resets, rollovers=result.rollovers,
            drops=named_drops(sensor.id, result.drops),
            boundaries_interpolated=result.start_exact and result.end_exact,
            largest_gap_s=result.largest_gap_ms / 1000))
        by_role[sensor.role.name] = by_role.get(sensor.role.name, 0.0) + kwh
    consumption_role = next((r for r in _CONSUMPTION_ROLES if equipment.with_role(r)), None)
    return EnergyOut(
        site=equipment.site, equipment=equipment.id, start=start, end=end,
        method="counter_difference",
        energy_kwh=by_role.get(consumption_role) if consumption_role else None,
        consumption_role=consumption_role, by_role=by_role, sensors=sensors, missing=missing)
