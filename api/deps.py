"""Dependencies of the routes, as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from api.access.tokens import Principal, TokenRole, authenticate
from api.accounting.factors import FactorTable
from api.accounting.gwp import GwpTable
from api.broker import BrokerMonitor
from api.periods import Calendar, Period, PeriodError, calendar_period, explicit_period
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


def _factors(request: Request) -> FactorTable:
    factors: FactorTable = request.app.state.factors
    return factors


def _gwp(request: Request) -> GwpTable:
    gwp: GwpTable = request.app.state.gwp
    return gwp


def _db(request: Request) -> Iterator[Session]:
    maker: sessionmaker[Session] = request.app.state.sessions
    with maker() as session:
        yield session


Settings = Annotated[ApiSettings, Depends(_settings)]
Factors = Annotated[FactorTable, Depends(_factors)]
Gwp = Annotated[GwpTable, Depends(_gwp)]
Db = Annotated[Session, Depends(_db)]
Registry = Annotated[SiteRegistry, Depends(_registry)]
Store = Annotated[ReadingsStore, Depends(_store)]
Broker = Annotated[BrokerMonitor, Depends(_broker)]


_bearer = HTTPBearer(auto_error=False, description="an api token (`dynamo api token create`)")


def _principal(
    db: Db, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None:
        raise HTTPException(401, "an api token is required (Authorization: Bearer …)",
                            headers={"WWW-Authenticate": "Bearer"})
    principal = authenticate(db, credentials.credentials)
    if principal is None:
        raise HTTPException(401, "unknown or revoked api token",
                            headers={"WWW-Authenticate": "Bearer"})
    return principal


Caller = Annotated[Principal, Depends(_principal)]


def require(*roles: TokenRole) -> Callable[[Principal], Principal]:
    """A dependency that lets only `roles` (and admin) through."""

    def check(caller: Caller) -> Principal:
        if caller.role is not TokenRole.ADMIN and caller.role not in roles:
            raise HTTPException(403, f"a {caller.role.value} token may not do this; "
                                     f"needs {' or '.join(r.value for r in roles) or 'admin'}")
        return caller

    return check


def _equipment(
    registry: Registry,
    caller: Caller,
    site: Annotated[str, Path(pattern=IDENT)],
    equipment: Annotated[str, Path(pattern=IDENT)],
) -> EquipmentInfo:
    if not caller.may_see(site):
        # The same answer as for a site that does not exist: a token learns nothing outside
        # its scope.
        raise HTTPException(404, f"no equipment {equipment!r} at site {site!r}")
    found = registry.get(site, equipment)
    if found is None:
        raise HTTPException(404, f"no equipment {equipment!r} at site {site!r}")
    return found


Equipment = Annotated[EquipmentInfo, Depends(_equipment)]


def _resolve_period(timezone: str, start: datetime | None, end: datetime | None,
                    period: Calendar | None, day: date | None) -> Period:
    try:
        if period is not None and day is not None and start is None and end is None:
            found = calendar_period(kind=period, containing=day, timezone=timezone)
        elif start is not None and end is not None and period is None and day is None:
            found = explicit_period(start=start, end=end)
        else:
            raise PeriodError("give either start and end, or period and date")
    except PeriodError as exc:
        raise HTTPException(422, str(exc)) from None
    if found.duration > timedelta(days=31, hours=1) and (
            found.start_ms % 3_600_000 or found.end_ms % 3_600_000):
        raise HTTPException(422, "periods over 31 days are computed from hourly rollups: "
                                 "start and end must fall on whole hours")
    return found


_Start = Annotated[datetime | None, Query(
    description="period start, inclusive, with a time zone (with `end`)")]
_End = Annotated[datetime | None, Query(
    description="period end, exclusive, with a time zone (with `start`)")]
_Calendar = Annotated[Calendar | None, Query(
    description="a calendar period in the site's time zone (with `date`)")]
_Day = Annotated[date | None, Query(alias="date",
                                    description="a local date inside the calendar period")]


def _period(equipment: Equipment, start: _Start = None, end: _End = None,
            period: _Calendar = None, day: _Day = None) -> Period:
    return _resolve_period(equipment.timezone, start, end, period, day)


def visible_site(registry: SiteRegistry, caller: Principal, site: str) -> str:
    """`site` if it exists and the caller may see it; otherwise 404, the same answer for a
    site outside the caller's scope as for one that does not exist."""
    if registry.timezone(site) is None or not caller.may_see(site):
        raise HTTPException(404, f"no site {site!r}")
    return site


def _site_period(registry: Registry, caller: Caller, site: Annotated[str, Path(pattern=IDENT)],
                 start: _Start = None, end: _End = None, period: _Calendar = None,
                 day: _Day = None) -> Period:
    zone = registry.timezone(visible_site(registry, caller, site))
    assert zone is not None  # visible_site refused an unknown site
    return _resolve_period(zone, start, end, period, day)


SitePeriod = Annotated[Period, Depends(_site_period)]
ReportPeriod = Annotated[Period, Depends(_period)]


# Every router but /health is mounted behind this.
AUTHENTICATED = Depends(_principal)
OPERATOR_WRITES = Depends(require(TokenRole.OPERATOR))
EVALUATOR_WRITES = Depends(require(TokenRole.EVALUATOR))
ADMIN_ONLY = Depends(require())
