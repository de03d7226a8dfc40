"""The site overview, the console's landing page: each machine's state, the few live values an
operator looks for, the age of its newest reading, its gateway online or offline and its active
alerts. The cards refresh themselves (a fragment every few seconds).

Which values a machine shows and how its state reads are data (`LIVE_VALUES`, `STATE_ROLES`),
chosen by sensor role; their words live in `messages/overview.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from api.access.people import Person
from api.alerts.history import AlertHistoryReader, AlertOut, AlertStoreUnavailable
from api.broker import BrokerMonitor
from api.console.auth import ConsoleRefusal, CurrentPerson
from api.console.render import page
from api.deps import IDENT, Registry, Settings, Store
from api.sites import EquipmentInfo, SiteRegistry
from api.store import LatestReading, ReadingsStore
from telemetry.site import EquipmentKind

router = APIRouter()

# The live values of each kind of machine, by sensor role, in the order shown, with the
# decimals they are written with. A machine lacking a role simply does not show it (hay
# moisture is measured on some dryers only).
LIVE_VALUES: dict[EquipmentKind, tuple[tuple[str, int], ...]] = {
    EquipmentKind.DRYER: (("inlet_air_temp", 1), ("hay_moisture", 1)),
    EquipmentKind.FREEZER: (("cabinet_air_temp", 1), ("product_core_temp", 1)),
    EquipmentKind.PACKAGING: (("line_speed", 0), ("units_packed", 0), ("units_rejected", 0)),
    EquipmentKind.OTHER: (),
}

# A machine's state comes from its first sensor with one of these roles (docs/roles.md): the
# code it reads and the state each code means.
STATE_ROLES: dict[str, dict[float, str]] = {
    "line_state": {0: "stopped", 1: "running", 2: "fault"},
    "fan_running": {0: "stopped", 1: "running"},
    "compressor_running": {0: "stopped", 1: "running"},
}

# Unit symbols as an operator writes them (the readings carry pint's spelling).
UNIT_SYMBOLS = {"degC": "°C", "percent": "%", "units/min": "u/min", "units": "u", "kg": "kg",
                "bar": "bar", "W": "W", "kWh": "kWh"}

ACTIVE_ALERT_STATES = ("firing", "pending")
# The alert store is read once per site per refresh, newest first: an alert still active
# after this many newer ones is not shown (the alerts page lists them all).
ALERTS_READ = 200
REFRESH_S = 10


@dataclass(frozen=True, slots=True)
class LiveValue:
    role: str
    sensor: str
    value: float | None
    unit: str
    digits: int
    quality: str


@dataclass(frozen=True, slots=True)
class Card:
    equipment: EquipmentInfo
    state: str  # running, stopped, fault, unknown
    values: tuple[LiveValue, ...]
    newest: datetime | None
    age_s: float | None
    gateway: str  # online, offline, unknown
    alerts: tuple[AlertOut, ...]
    alerts_unavailable: bool
    zone: ZoneInfo  # the site's, for the times shown


@dataclass(frozen=True, slots=True)
class SiteView:
    site: str
    cards: tuple[Card, ...]


def machine_state(equipment: EquipmentInfo, readings: dict[str, LatestReading]) -> str:
    """running / stopped / fault from the first state sensor that has a good reading."""
    for role, codes in STATE_ROLES.items():
        for sensor in equipment.with_role(role):
            reading = readings.get(sensor.id)
            if reading is not None and reading.value is not None and reading.quality != "bad":
                return codes.get(round(reading.value), "unknown")
    return "unknown"


def live_values(equipment: EquipmentInfo,
                readings: dict[str, LatestReading]) -> tuple[LiveValue, ...]:
    out: list[LiveValue] = []
    for role, digits in LIVE_VALUES.get(equipment.kind, ()):
        for sensor in equipment.with_role(role):
            reading = readings.get(sensor.id)
            out.append(LiveValue(
                role=role, sensor=sensor.id,
                value=None if reading is None else reading.value,
                unit=UNIT_SYMBOLS.get(reading.unit if reading else sensor.unit, sensor.unit),
                digits=digits, quality=reading.quality if reading else "none"))
    return tuple(out)


def gateway_state(broker: BrokerMonitor, *, site: str, gateway: str) -> str:
    found = broker.gateway(site=site, gateway=gateway)
    if found is None:
        return "unknown"
    return "online" if found.online else "offline"


def site_view(*, site: str, registry: SiteRegistry, store: ReadingsStore,
              broker: BrokerMonitor, alerts: AlertHistoryReader, lookback: timedelta,
              now: datetime) -> SiteView:
    """Everything the overview shows of one site: one InfluxDB request per machine, one read
    of the alert store."""
    machines = [eq for (s, _), eq in sorted(registry.equipment.items()) if s == site]
    active: list[AlertOut] = []
    unavailable = False
    try:
        active = [a for a in alerts.history(site=site, limit=ALERTS_READ)
                  if a.state in ACTIVE_ALERT_STATES and a.resolved_at is None]
    except AlertStoreUnavailable:
        unavailable = True
    cards: list[Card] = []
    for eq in machines:
        readings = {r.sensor: r for r in store.latest(site=site, equipment=eq.id,
                                                       since=now - lookback)}
        newest_ms = max((r.time_ms for r in readings.values()), default=None)
        newest = None if newest_ms is None else datetime.fromtimestamp(newest_ms / 1000, UTC)
        cards.append(Card(
            equipment=eq, state=machine_state(eq, readings), values=live_values(eq, readings),
            newest=newest,
            age_s=None if newest is None else max(0.0, (now - newest).total_seconds()),
            gateway=gateway_state(broker, site=site, gateway=eq.gateway),
            alerts=tuple(a for a in active if a.equipment == eq.id),
            alerts_unavailable=unavailable, zone=ZoneInfo(eq.timezone)))
    return SiteView(site=site, cards=tuple(cards))


def visible_sites(registry: SiteRegistry, person: Person) -> list[str]:
    return [site for site in registry.sites() if person.may_see(site)]


def _views(request: Request, registry: SiteRegistry, store: ReadingsStore,
           settings: Settings, sites: list[str]) -> list[SiteView]:
    now = datetime.now(UTC)
    return [site_view(site=site, registry=registry, store=store,
                      broker=request.app.state.broker, alerts=request.app.state.alert_history,
                      lookback=timedelta(seconds=settings.latest_lookback_s), now=now)
            for site in sites]


def _render(request: Request, views: list[SiteView], fragment_url: str) -> HTMLResponse:
    return page(request, "overview.html", nav="overview", views=views, refresh_url=fragment_url,
                refresh_every_s=REFRESH_S)


def _checked_site(request: Request, registry: SiteRegistry, person: Person, site: str) -> str:
    if site not in visible_sites(registry, person):
        # The same answer for a site that exists elsewhere and one that does not.
        raise ConsoleRefusal(request, 404, "common.not_found")
    return site


_Site = Annotated[str, Path(pattern=IDENT)]


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, person: CurrentPerson, registry: Registry, store: Store,
             settings: Settings) -> HTMLResponse:
    """Every machine of the sites the person may see."""
    views = _views(request, registry, store, settings, visible_sites(registry, person))
    return _render(request, views, "/cartes")


@router.get("/cartes", response_class=HTMLResponse)
def overview_cards(request: Request, person: CurrentPerson, registry: Registry, store: Store,
                   settings: Settings) -> HTMLResponse:
    """The cards alone, for the page's refresh."""
    views = _views(request, registry, store, settings, visible_sites(registry, person))
    return page(request, "overview_cards.html", views=views)


@router.get("/sites/{site}", response_class=HTMLResponse)
def site_overview(request: Request, person: CurrentPerson, registry: Registry, store: Store,
                  settings: Settings, site: _Site) -> HTMLResponse:
    """One site's machines; 404 for a site the person may not see."""
    checked = _checked_site(request, registry, person, site)
    views = _views(request, registry, store, settings, [checked])
    return _render(request, views, f"/sites/{site}/cartes")


@router.get("/sites/{site}/cartes", response_class=HTMLResponse)
def site_cards(request: Request, person: CurrentPerson, registry: Registry, store: Store,
               settings: Settings, site: _Site) -> HTMLResponse:
    checked = _checked_site(request, registry, person, site)
    views = _views(request, registry, store, settings, [checked])
    return page(request, "overview_cards.html", views=views)
