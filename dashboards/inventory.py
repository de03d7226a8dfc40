"""What the gateway configurations say exists: sites, gateways, equipment and their sensors.

The dashboards are generated from this, by role and by kind of equipment, never per sensor by
hand: a new machine or site gets its dashboards from its configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from telemetry.loader import load_gateway_config
from telemetry.roles import ROLES, Kind
from telemetry.site import EquipmentKind, GatewayConfig


@dataclass(frozen=True, slots=True)
class SensorInfo:
    id: str
    role: str
    unit: str
    poll_interval_s: float
    attributes: tuple[tuple[str, str], ...] = ()
    location: str = ""  # where the sensor is (a probe in a stack of bales)

    @property
    def kind(self) -> Kind:
        return ROLES[self.role].kind


@dataclass(frozen=True, slots=True)
class EquipmentInfo:
    site: str
    gateway: str
    id: str
    kind: EquipmentKind
    name: str
    timezone: str
    sensors: tuple[SensorInfo, ...]

    def with_role(self, *roles: str) -> list[SensorInfo]:
        """Sensors having one of `roles`, in the order of `roles` then of the configuration."""
        return [s for role in roles for s in self.sensors if s.role == role]


@dataclass(frozen=True, slots=True)
class SiteInfo:
    id: str
    timezone: str
    gateways: tuple[str, ...]
    equipment: tuple[EquipmentInfo, ...]


def equipment_of(config: GatewayConfig) -> list[EquipmentInfo]:
    """The equipment of one gateway configuration with its sensors' roles and units."""
    out = []
    for equipment in config.equipment:
        sensors = []
        for device in config.devices:
            if device.equipment != equipment.id:
                continue
            for sensor in device.sensors:
                unit = sensor.unit if sensor.unit is not None else config.point_of(
                    device, sensor).unit
                sensors.append(SensorInfo(
                    id=sensor.id, role=sensor.role, unit=unit,
                    poll_interval_s=device.poll_interval_s,
                    attributes=tuple(sorted(sensor.attributes.items())),
                    location=sensor.location))
        out.append(EquipmentInfo(site=config.site, gateway=config.gateway, id=equipment.id,
                                 kind=equipment.kind, name=equipment.name,
                                 timezone=config.timezone, sensors=tuple(sensors)))
    return out


def sites_of(configs: Iterable[GatewayConfig]) -> list[SiteInfo]:
    """Group gateway configurations by site, sorted by id."""
    by_site: dict[str, list[GatewayConfig]] = {}
    for config in configs:
        by_site.setdefault(config.site, []).append(config)
    sites = []
    for site, members in sorted(by_site.items()):
        members.sort(key=lambda c: c.gateway)
        sites.append(SiteInfo(
            id=site, timezone=members[0].timezone,
            gateways=tuple(c.gateway for c in members),
            equipment=tuple(e for c in members for e in equipment_of(c))))
    return sites


def load_sites(config_dir: Path) -> list[SiteInfo]:
    """Every gateway configuration under `config_dir` (`<site>/<gateway>.yaml`), by site."""
    files: Sequence[Path] = sorted(config_dir.rglob("*.yaml"))
    if not files:
        raise FileNotFoundError(f"no gateway configuration (*.yaml) under {config_dir}")
    return sites_of(load_gateway_config(f) for f in files)
