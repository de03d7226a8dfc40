"""The equipment and sensors the api knows, read from the sites' gateway configurations."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from telemetry.errors import ConfigError
from telemetry.loader import load_gateway_config
from telemetry.roles import ROLES, Role
from telemetry.shifts import ShiftCalendar
from telemetry.site import EquipmentKind, RefrigerantCharge, Sensor
from telemetry.template import MqttField, RegisterPoint


@dataclass(frozen=True, slots=True)
class SensorInfo:
    id: str
    role: Role
    unit: str
    device: str
    attributes: dict[str, str]
    # The template's register data type (`float32`, `uint32`…), None for an MQTT field: a
    # counter's resolution, hence part of its uncertainty, depends on it.
    data_type: str | None = None
    # The value the api reads is `raw × scale + offset` of the device's raw value (template and
    # sensor conversions together): where an integer register wraps, in the sensor's unit.
    scale: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True, slots=True)
class EquipmentInfo:
    id: str
    kind: EquipmentKind
    name: str
    site: str
    gateway: str
    sensors: tuple[SensorInfo, ...]
    timezone: str = "Europe/Paris"  # the site's, for calendar periods
    refrigerant: RefrigerantCharge | None = None  # a refrigeration system's fluid and charge
    calendar: ShiftCalendar | None = None  # the configuration's shift calendar (default)

    def with_role(self, role: str) -> list[SensorInfo]:
        return [s for s in self.sensors if s.role.name == role]


def _data_type(point: RegisterPoint | MqttField) -> str | None:
    return str(point.data_type) if isinstance(point, RegisterPoint) else None


def _conversion(point: RegisterPoint | MqttField, sensor: Sensor) -> dict[str, float]:
    """(raw × point.scale + point.offset) × sensor.scale + sensor.offset as one scale, offset."""
    return {"scale": point.scale * sensor.scale,
            "offset": point.offset * sensor.scale + sensor.offset}


class SiteRegistry:
    """Every equipment of every gateway configuration found below a directory."""

    def __init__(self, equipment: dict[tuple[str, str], EquipmentInfo]) -> None:
        self.equipment = equipment

    def get(self, site: str, equipment_id: str) -> EquipmentInfo | None:
        return self.equipment.get((site, equipment_id))

    def sites(self) -> list[str]:
        """Every site that has equipment, sorted."""
        return sorted({site for site, _ in self.equipment})

    def timezone(self, site: str) -> str | None:
        """The site's zone (its gateway configurations'), None for an unknown site."""
        zones = sorted({eq.timezone for (s, _), eq in self.equipment.items() if s == site})
        return zones[0] if zones else None

    @classmethod
    def load(cls, directory: Path) -> SiteRegistry:
        found: dict[tuple[str, str], EquipmentInfo] = {}
        issues = []
        for file in sorted(directory.rglob("*.yaml")):
            try:
                config = load_gateway_config(file)
            except ConfigError as exc:
                issues.extend(exc.issues)
                continue
            for eq in config.equipment:
                sensors = tuple(
                    SensorInfo(id=s.id, role=ROLES[s.role],
                               unit=s.unit if s.unit is not None
                               else config.point_of(d, s).unit,
                               device=d.id, attributes=dict(s.attributes),
                               data_type=_data_type(config.point_of(d, s)),
                               **_conversion(config.point_of(d, s), s))
                    for d in config.devices if d.equipment == eq.id for s in d.sensors)
                found[(config.site, eq.id)] = EquipmentInfo(id=eq.id, kind=eq.kind, name=eq.name,
                                             site=config.site, gateway=config.gateway,
                                             sensors=sensors, timezone=config.timezone,
                                             refrigerant=eq.refrigerant,
                                             calendar=eq.calendar)
        if issues:
            raise ConfigError(issues)
        return cls(found)
