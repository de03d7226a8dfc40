"""Dependencies of the routes, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request

from api.broker import BrokerMonitor
from api.settings import ApiSettings
from api.sites import EquipmentInfo, SiteRegistry
from api.store import ReadingsStore

IDENT = r"^[a-z0-9][a-z0-9_-]{0,62}$"


def _settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def _registry(request: Request) -> SiteRegistry:
    registry: SiteRegistry = request.app.state.registry
    return registry


def _store(request: Request) -> ReadingsStore:
    store: ReadingsStore = request.app.state.store
    return store


def _broker(request: Request) -> BrokerMonitor:
    broker: BrokerMonitor = request.app.state.broker
    return broker


Settings = Annotated[ApiSettings, Depends(_settings)]
Registry = Annotated[SiteRegistry, Depends(_registry)]
Store = Annotated[ReadingsStore, Depends(_store)]
Broker = Annotated[BrokerMonitor, Depends(_broker)]


def _equipment(
    registry: Registry,
    site: Annotated[str, Path(pattern=IDENT)],
    equipment: Annotated[str, Path(pattern=IDENT)],
) -> EquipmentInfo:
    found = registry.get(site, equipment)
    if found is None:
        raise HTTPException(404, f"no equipment {equipment!r} at site {site!r}")
    return found


Equipment = Annotated[EquipmentInfo, Depends(_equipment)]
