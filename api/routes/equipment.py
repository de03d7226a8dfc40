"""Equipment: what is monitored, and its latest readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter

from api.deps import Caller, Equipment, Registry, Settings, Store
from api.schemas import EquipmentOut, LatestOut, ReadingOut, SensorOut
from api.sites import EquipmentInfo

router = APIRouter(tags=["equipment"])


def _out(eq: EquipmentInfo) -> EquipmentOut:
    return EquipmentOut(
        site=eq.site, id=eq.id, kind=eq.kind.value, name=eq.name, gateway=eq.gateway,
        sensors=[SensorOut(id=s.id, role=s.role.name, unit=s.unit, device=s.device)
                 for s in eq.sensors])


@router.get("/equipment", response_model=list[EquipmentOut])
def list_equipment(registry: Registry, caller: Caller) -> list[EquipmentOut]:
    """Every equipment of the sites the token may see, with its sensors and their roles."""
    return [_out(eq) for (site, _), eq in sorted(registry.equipment.items())
            if caller.may_see(site)]


@router.get("/sites/{site}/equipment/{equipment}", response_model=EquipmentOut)
def get_equipment(equipment: Equipment) -> EquipmentOut:
    return _out(equipment)


@router.get("/sites/{site}/equipment/{equipment}/latest", response_model=LatestOut)
def latest(equipment: Equipment, store: Store, settings: Settings) -> LatestOut:
    """The newest reading of each sensor (within the last day by default)."""
    since = datetime.now(UTC) - timedelta(seconds=settings.latest_lookback_s)
    roles = {s.id: s.role.name for s in equipment.sensors}
    readings = [
        ReadingOut(sensor=r.sensor, role=roles.get(r.sensor),
                   time=datetime.fromtimestamp(r.time_ms / 1000, UTC), value=r.value,
                   unit=r.unit, quality=r.quality, reason=r.reason)
        for r in store.latest(site=equipment.site, equipment=equipment.id, since=since)
    ]
    return LatestOut(site=equipment.site, equipment=equipment.id, readings=readings)
