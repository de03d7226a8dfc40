"""Alerts of a site: the history (alerts with every notification, its delivery result, and
every acknowledgement, read from the alerting service's store), and the commands that
acknowledge an alert or silence an equipment (sent to the alerting service over MQTT)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request

from api.alerts import commands
from api.alerts.commands import AcknowledgementIn, CommandAccepted, CommandError, SilenceIn
from api.alerts.history import (
    MAX_LIMIT,
    AlertHistoryReader,
    AlertOut,
    AlertStoreUnavailable,
    CommandStatus,
    SilenceOut,
)
from api.deps import IDENT, OPERATOR_WRITES, Broker, Caller, Registry, visible_site
from api.periods import PeriodError, check_moment

router = APIRouter(tags=["alerts"])
# What each refusal of a command is over HTTP.
_STATUS = {"no_such_alert": 404, "not_firing": 409, "already_acknowledged": 409, "not_sent": 503}
SiteId = Annotated[str, Path(pattern=IDENT)]


def _reader(request: Request) -> AlertHistoryReader:
    reader: AlertHistoryReader = request.app.state.alert_history
    return reader


@router.get("/sites/{site}/alerts", response_model=list[AlertOut])
def alert_history(
    request: Request, registry: Registry, caller: Caller,
    site: Annotated[str, Path(pattern=IDENT)],
    equipment: Annotated[str | None, Query(pattern=IDENT,
                                           description="only this equipment's alerts")] = None,
    since: Annotated[datetime | None, Query(
        description="alerts whose last change is at or after this time (with a zone)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="newest first")] = 100,
) -> list[AlertOut]:
    """A site's alerts, newest first: state, times, who acknowledged, every SMS sent with its
    delivery result, every reply. Any role may read its own site's history."""
    visible_site(registry, caller, site)
    if equipment is not None and registry.get(site, equipment) is None:
        raise HTTPException(404, f"no equipment {equipment!r} at site {site!r}")
    if since is not None:
        try:
            check_moment(since, "since")
        except PeriodError as exc:
            raise HTTPException(422, str(exc)) from None
    reader = _reader(request)
    try:
        return reader.history(site=site, equipment=equipment, limit=limit,
                              since_ms=None if since is None else int(since.timestamp() * 1000))
    except AlertStoreUnavailable as exc:
        raise HTTPException(503, str(exc)) from None


@router.post("/sites/{site}/alerts/{alert_id}/acknowledgements", status_code=202,
             response_model=CommandAccepted, dependencies=[OPERATOR_WRITES])
def acknowledge_alert(request: Request, registry: Registry, caller: Caller, broker: Broker,
                      site: SiteId, alert_id: Annotated[int, Path(ge=1)],
                      body: AcknowledgementIn | None = None) -> CommandAccepted:
    """Acknowledge a firing alert with the same effect as an SMS reply "OK 42": the alerting
    service stops its repeats and escalation and tells everyone already told. 202: the broker
    has the command; `status` shows what the alerting service did with it. 409: the alert is
    not firing, or already acknowledged. Operator or admin tokens, of the alert's site."""
    visible_site(registry, caller, site)
    try:
        command_id = commands.acknowledge(
            broker, _reader(request), site=site, alert_id=alert_id,
            by=commands.actor("token", caller.name), via="api",
            reason=body.reason if body else "")
    except CommandError as exc:
        raise HTTPException(_STATUS.get(exc.code, 409), exc.detail) from None
    except AlertStoreUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    return CommandAccepted(command_id=command_id,
                           status=f"/api/v1/sites/{site}/alert-commands/{command_id}")


@router.post("/sites/{site}/silences", status_code=202, response_model=CommandAccepted,
             dependencies=[OPERATOR_WRITES])
def silence_equipment(registry: Registry, caller: Caller, broker: Broker, site: SiteId,
                      body: SilenceIn) -> CommandAccepted:
    """Maintenance: no SMS about one equipment for `minutes` (alerts are still evaluated and
    recorded; one still firing when the silence ends is announced then). 202 as above."""
    visible_site(registry, caller, site)
    if registry.get(site, body.equipment) is None:
        raise HTTPException(404, f"no equipment {body.equipment!r} at site {site!r}")
    try:
        command_id = commands.silence(broker, site=site, equipment=body.equipment,
                                      minutes=body.minutes, reason=body.reason,
                                      by=commands.actor("token", caller.name), via="api")
    except CommandError as exc:
        raise HTTPException(_STATUS.get(exc.code, 409), exc.detail) from None
    return CommandAccepted(command_id=command_id,
                           status=f"/api/v1/sites/{site}/alert-commands/{command_id}")


@router.get("/sites/{site}/silences", response_model=list[SilenceOut])
def active_silences(request: Request, registry: Registry, caller: Caller,
                    site: SiteId) -> list[SilenceOut]:
    """The site's maintenance silences running now, from the alerting service's store."""
    visible_site(registry, caller, site)
    try:
        return _reader(request).silences(site=site, at_ms=int(time.time() * 1000))
    except AlertStoreUnavailable as exc:
        raise HTTPException(503, str(exc)) from None


@router.get("/sites/{site}/alert-commands/{command_id}", response_model=CommandStatus)
def command_status(request: Request, registry: Registry, caller: Caller, site: SiteId,
                   command_id: Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")]) -> CommandStatus:
    """What the alerting service did with a command: applied, refused (e.g. the alert resolved
    meanwhile) or rejected. 404 while it has not received it yet."""
    visible_site(registry, caller, site)
    try:
        found = _reader(request).command(site=site, command_id=command_id)
    except AlertStoreUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    if found is None:
        raise HTTPException(404, f"command {command_id} not received by the alerting service")
    return found
