"""Alert history of a site: alerts with every notification, its delivery result, and every
acknowledgement (read from the alerting service's store)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request

from api.alerts.history import MAX_LIMIT, AlertHistoryReader, AlertOut, AlertStoreUnavailable
from api.deps import IDENT, Caller, Registry
from api.periods import PeriodError, check_moment

router = APIRouter(tags=["alerts"])


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
    known = {s for s, _ in registry.equipment}
    if site not in known or not caller.may_see(site):
        raise HTTPException(404, f"no site {site!r}")
    if equipment is not None and registry.get(site, equipment) is None:
        raise HTTPException(404, f"no equipment {equipment!r} at site {site!r}")
    if since is not None:
        try:
            check_moment(since, "since")
        except PeriodError as exc:
            raise HTTPException(422, str(exc)) from None
    reader: AlertHistoryReader = request.app.state.alert_history
    try:
        return reader.history(site=site, equipment=equipment, limit=limit,
                              since_ms=None if since is None else int(since.timestamp() * 1000))
    except AlertStoreUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
