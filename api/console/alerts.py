"""The alerts page: a site's active alerts (refreshed every few seconds), its maintenance
silences, and the last 7 days of alerts with every SMS and every acknowledgement (who, by SMS
or from the console).

"Acquitter" and "Mettre en silence" send a command to the alerting service over MQTT
(`api.alerts.commands`): the same effect as an SMS reply "OK 42" or `dynamo alerts silence`.
The page says the command was sent; the acknowledgement shows once the alerting service has
applied it, read from its store on the next refresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.access.tokens import TokenRole
from api.alerts import commands
from api.alerts.commands import SILENCE_MINUTES, CommandError
from api.alerts.history import (
    AlertHistoryReader,
    AlertOut,
    AlertStoreUnavailable,
    CommandStatus,
    SilenceOut,
)
from api.console.auth import ConsoleRefusal, CsrfChecked, CurrentPerson, Person, require_role
from api.console.i18n import catalogue, translate
from api.console.language import local_path
from api.console.overview import UNIT_SYMBOLS, visible_sites
from api.console.render import lang_of, page
from api.deps import IDENT, Registry
from api.sites import EquipmentInfo, SiteRegistry

router = APIRouter()

RECENT = timedelta(days=7)
RECENT_READ = 200  # alerts of the last 7 days shown, newest first
REFRESH_S = 10
# Who may acknowledge and silence (admin always may): the people on the floor.
COMMANDERS = (TokenRole.OPERATOR,)
Commander = Annotated[Person, Depends(require_role(*COMMANDERS))]
_Site = Annotated[str, Path(pattern=IDENT)]
_CommandId = Annotated[str | None, Query(alias="commande", pattern=r"^[0-9a-f-]{36}$")]


@dataclass(frozen=True, slots=True)
class SiteAlerts:
    site: str
    zone: ZoneInfo
    machines: tuple[EquipmentInfo, ...]
    active: tuple[AlertOut, ...]
    recent: tuple[AlertOut, ...]
    silences: tuple[SilenceOut, ...]
    command: CommandStatus | None  # the command this page was asked to follow, once received
    unavailable: bool  # the alerting service's store cannot be read

    @property
    def names(self) -> dict[str, str]:
        return {eq.id: eq.name for eq in self.machines}


def site_alerts(*, site: str, registry: SiteRegistry, reader: AlertHistoryReader,
                command_id: str | None, now: datetime) -> SiteAlerts:
    """What the page shows of one site: three reads of the alerting service's store."""
    machines = tuple(eq for (s, _), eq in sorted(registry.equipment.items()) if s == site)
    zones = sorted({eq.timezone for eq in machines}) or ["UTC"]
    now_ms = int(now.timestamp() * 1000)
    try:
        active = reader.history(site=site, open_only=True, limit=RECENT_READ)
        recent = reader.history(site=site, since_ms=now_ms - int(RECENT.total_seconds() * 1000),
                                limit=RECENT_READ)
        silences = reader.silences(site=site, at_ms=now_ms)
        command = None if command_id is None else reader.command(site=site,
                                                                 command_id=command_id)
    except AlertStoreUnavailable:
        return SiteAlerts(site=site, zone=ZoneInfo(zones[0]), machines=machines, active=(),
                          recent=(), silences=(), command=None, unavailable=True)
    return SiteAlerts(site=site, zone=ZoneInfo(zones[0]), machines=machines,
                      active=tuple(a for a in active if a.state == "firing"),
                      recent=tuple(recent), silences=tuple(silences), command=command,
                      unavailable=False)


def who(actor: str | None) -> str:
    """`user:alice` → alice; a contact id (an SMS reply) as it is."""
    if not actor:
        return ""
    return actor.split(":", 1)[1] if actor.startswith(("user:", "token:")) else actor


def _views(request: Request, registry: SiteRegistry, sites: list[str],
           command_id: str | None) -> list[SiteAlerts]:
    now = datetime.now(UTC)
    reader: AlertHistoryReader = request.app.state.alert_history
    return [site_alerts(site=site, registry=registry, reader=reader, command_id=command_id,
                        now=now) for site in sites]


def _checked_site(request: Request, registry: SiteRegistry, person: Person, site: str) -> str:
    if site not in visible_sites(registry, person):
        raise ConsoleRefusal(request, 404, "common.not_found")  # elsewhere or nowhere alike
    return site


def _render(request: Request, person: Person, views: list[SiteAlerts], *, here: str,
            command_id: str | None, refused: str | None = None,
            form_errors: dict[str, dict[str, str]] | None = None,
            form_values: dict[str, dict[str, str]] | None = None,
            status: int = 200) -> HTMLResponse:
    query = f"?{urlencode({'commande': command_id})}" if command_id else ""
    return page(request, "alerts.html", status=status, nav="alerts",
                refresh_url=f"{here}/liste{query}", refresh_every_s=REFRESH_S,
                refused=refused, form_errors=form_errors or {}, form_values=form_values or {},
                silence_minutes=SILENCE_MINUTES,
                **_list_context(request, person, views, here=here, command_id=command_id))


def _list_context(request: Request, person: Person, views: list[SiteAlerts], *, here: str,
                  command_id: str | None) -> dict[str, Any]:
    """What alerts_list.html needs, on the page and in its refreshed fragment alike."""
    lang = lang_of(request)
    known = catalogue()

    def word(prefix: str, value: str) -> str:
        # A value the page has no word for (a new state or channel) is shown as it is.
        key = f"alerts.{prefix}_{value}"
        return translate(key, lang) if key in known else value

    return {"views": views, "here": here, "command_id": command_id,
            "followed": next((v.command for v in views if v.command is not None), None),
            "may_command": person.role in (*COMMANDERS, TokenRole.ADMIN),
            "unit": lambda unit: UNIT_SYMBOLS.get(unit, unit), "who": who, "word": word}


def _fragment(request: Request, person: Person, views: list[SiteAlerts],
              command_id: str | None) -> HTMLResponse:
    here = request.url.path.removesuffix("/liste")
    return page(request, "alerts_list.html",
                **_list_context(request, person, views, here=here, command_id=command_id))


_Refused = Annotated[str | None, Query(alias="refus", pattern=r"^[a-z_]{1,40}$")]


@router.get("/alertes", response_class=HTMLResponse)
def alerts(request: Request, person: CurrentPerson, registry: Registry,
           command_id: _CommandId = None, refused: _Refused = None) -> HTMLResponse:
    """The alerts of every site the person may see."""
    views = _views(request, registry, visible_sites(registry, person), command_id)
    return _render(request, person, views, here="/alertes", command_id=command_id,
                   refused=refused)


@router.get("/alertes/liste", response_class=HTMLResponse)
def alerts_list(request: Request, person: CurrentPerson, registry: Registry,
                command_id: _CommandId = None) -> HTMLResponse:
    """The refreshed part alone (the forms stay as they are while someone types)."""
    return _fragment(request, person, _views(request, registry, visible_sites(registry, person),
                                             command_id), command_id)


@router.get("/sites/{site}/alertes", response_class=HTMLResponse)
def site_alerts_page(request: Request, person: CurrentPerson, registry: Registry, site: _Site,
                     command_id: _CommandId = None, refused: _Refused = None) -> HTMLResponse:
    checked = _checked_site(request, registry, person, site)
    return _render(request, person, _views(request, registry, [checked], command_id),
                   here=f"/sites/{site}/alertes", command_id=command_id, refused=refused)


@router.get("/sites/{site}/alertes/liste", response_class=HTMLResponse)
def site_alerts_list(request: Request, person: CurrentPerson, registry: Registry, site: _Site,
                     command_id: _CommandId = None) -> HTMLResponse:
    checked = _checked_site(request, registry, person, site)
    return _fragment(request, person, _views(request, registry, [checked], command_id),
                     command_id)


def _back(target: str, **query: str) -> RedirectResponse:
    page_path = local_path(target)
    if page_path not in ("/alertes",) and not page_path.endswith("/alertes"):
        page_path = "/alertes"
    return RedirectResponse(f"{page_path}?{urlencode(query)}", status_code=303)


@router.post("/alertes/{site}/{alert_id}/acquitter", dependencies=[CsrfChecked])
def acknowledge(request: Request, person: Commander, registry: Registry, site: _Site,
                alert_id: Annotated[int, Path(ge=1)],
                next_page: Annotated[str, Form(alias="next")] = "/alertes") -> Response:
    """Send the acknowledgement to the alerting service; back to the page, which follows it."""
    _checked_site(request, registry, person, site)
    try:
        command_id = commands.acknowledge(request.app.state.broker,
                                          request.app.state.alert_history, site=site,
                                          alert_id=alert_id, by=person.actor, via="console")
    except CommandError as exc:
        return _back(next_page, refus=exc.code)
    except AlertStoreUnavailable:
        return _back(next_page, refus="unavailable")
    return _back(next_page, commande=command_id)


@router.post("/alertes/{site}/silences", response_class=HTMLResponse,
             dependencies=[CsrfChecked])
def silence(request: Request, person: Commander, registry: Registry, site: _Site,
            equipment: Annotated[str, Form()], minutes: Annotated[str, Form()] = "",
            reason: Annotated[str, Form()] = "",
            next_page: Annotated[str, Form(alias="next")] = "/alertes") -> Response:
    """Silence one equipment for a duration of the list, with a reason (required)."""
    _checked_site(request, registry, person, site)
    if registry.get(site, equipment) is None:
        raise ConsoleRefusal(request, 404, "common.not_found")
    lang = lang_of(request)
    errors: dict[str, str] = {}
    if not minutes.isdigit() or int(minutes) not in SILENCE_MINUTES:
        errors["minutes"] = translate("alerts.error_duration", lang)
    if not reason.strip():
        errors["reason"] = translate("alerts.error_reason", lang)
    elif len(reason.strip()) > 200:
        errors["reason"] = translate("alerts.error_reason_long", lang)
    if not errors:
        try:
            command_id = commands.silence(request.app.state.broker, site=site,
                                          equipment=equipment, minutes=int(minutes),
                                          reason=reason.strip(), by=person.actor,
                                          via="console")
        except CommandError as exc:
            return _back(next_page, refus=exc.code)
        return _back(next_page, commande=command_id)
    here = local_path(next_page)
    sites = [site] if here.startswith("/sites/") else visible_sites(registry, person)
    return _render(request, person, _views(request, registry, sites, None),
                   here=here if here.endswith("/alertes") else "/alertes", command_id=None,
                   form_errors={f"{site}/{equipment}": errors},
                   form_values={f"{site}/{equipment}": {"minutes": minutes, "reason": reason}},
                   status=422)
