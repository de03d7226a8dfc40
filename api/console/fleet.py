"""The admins' fleet page (`/flotte`): every gateway the broker holds a status of, as
`dynamo fleet status` lists them, and, when the server holds the fleet's private key
(`DYNAMO_FLEET_KEY`), a button that pushes a gateway's configuration as `dynamo fleet push`
does (docs/fleet.md).

The api already follows every gateway's retained status (api/broker.py); the table only reads
it. The push validates the gateway's file below `DYNAMO_SITE_CONFIGS`, signs it and publishes it
retained as the `api` user, the one the broker's ACL lets write configurations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.access.people import Person
from api.access.tokens import TokenRole
from api.broker import GatewayStatus
from api.console.auth import ConsoleRoute, CsrfChecked, require_role
from api.console.i18n import translate
from api.console.render import lang_of, page
from api.deps import IDENT, Broker, Settings
from api.settings import ApiSettings

router = APIRouter(route_class=ConsoleRoute)
Admin = Annotated[Person, Depends(require_role(TokenRole.ADMIN))]
_Ident = Annotated[str, Path(pattern=IDENT)]


@dataclass(frozen=True, slots=True)
class FleetLine:
    """One gateway as the table shows it."""

    site: str
    gateway: str
    online: bool
    config_version: int | None
    config_known: bool  # False for a last will, which says nothing of the configuration
    config_hash: str
    software: str
    spool: int | None
    cert_expires: datetime | None
    age_s: float | None
    refused_version: int | None
    refused_reason: str
    # Numbers the gateway's last power cut left unaccounted for (write-behind), [first, last]
    void: tuple[int, int] | None = None


def line(found: GatewayStatus, now_ms: int) -> FleetLine:
    s = found.status
    refused = s.config_refused
    return FleetLine(
        site=found.site, gateway=found.gateway, online=found.online,
        config_version=s.config_version, config_known=s.ts is not None,
        config_hash=s.config_hash or "—",
        software=s.version or "—", spool=s.buffer_depth,
        cert_expires=None if s.cert_expires_ts is None
        else datetime.fromtimestamp(s.cert_expires_ts / 1000, UTC),
        # The last will has no time of its own: then the api's reception time says how old.
        age_s=max(0.0, (now_ms - (s.ts if s.ts is not None else found.received_ms)) / 1000),
        refused_version=refused.version if refused else None,
        refused_reason=refused.reason if refused else "", void=s.buffer_void)


def _page(request: Request, broker: Broker, settings: ApiSettings, *, status: int = 200,
          error: str | None = None, pushed: dict[str, str] | None = None) -> HTMLResponse:
    now_ms = int(time.time() * 1000)
    lines = sorted((line(g, now_ms) for g in broker.gateways()),
                   key=lambda f: (f.site, f.gateway))
    return page(request, "fleet.html", status=status, nav="fleet", lines=lines,
                connected=broker.connected.is_set(), broker_state=broker.describe(),
                can_push=settings.fleet_key is not None, error=error, pushed=pushed)


@router.get("/flotte")
def fleet_page(request: Request, broker: Broker, settings: Settings, admin: Admin,
               envoi: str | None = None, version: str | None = None,
               empreinte: str | None = None) -> HTMLResponse:
    pushed = {"gateway": envoi, "version": version or "", "hash": empreinte or ""} \
        if envoi else None
    return _page(request, broker, settings, pushed=pushed)


@router.post("/flotte/{site}/{gateway}/envoyer", dependencies=[CsrfChecked])
def push_config(request: Request, broker: Broker, settings: Settings, admin: Admin,
                site: _Ident, gateway: _Ident) -> Response:
    """Sign and publish the gateway's configuration; the gateway's status then says whether it
    applied it."""
    from telemetry.fleet import FleetError, find_config, push

    lang = lang_of(request)
    if settings.fleet_key is None:
        return _page(request, broker, settings, status=409,
                     error=translate("fleet.push_disabled", lang))
    try:
        file = find_config(gateway, settings.site_configs)
        pushed = push(gateway=gateway, config_file=file, key_file=settings.fleet_key,
                      broker=settings.broker(), site=site)
    except FleetError as exc:
        return _page(request, broker, settings, status=422,
                     error=translate("fleet.push_failed", lang, gateway=gateway, reason=str(exc)))
    query = urlencode({"envoi": f"{site}/{gateway}", "version": pushed.version,
                       "empreinte": pushed.sha256[:12]})
    return RedirectResponse(f"/flotte?{query}", status_code=303)
