"""RTE éCO2mix grid intensity: import a downloaded file (admin), to weight consumption in time."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from api.accounting.eco2mix import Eco2mixError, lines, parse
from api.deps import ADMIN_ONLY, Store
from api.schemas import ImportOut

router = APIRouter(tags=["grid intensity"])
_LIMIT = 64 * 1024 * 1024  # a year of 15-min rows is ~10 MB


@router.post("/grid-intensity", response_model=ImportOut, dependencies=[ADMIN_ONLY],
             openapi_extra={"requestBody": {"content": {
                 "text/tab-separated-values": {"schema": {"type": "string"}},
                 "application/json": {"schema": {"type": "string"}}}, "required": True}})
async def import_grid_intensity(request: Request, store: Store) -> ImportOut:
    """Body: an éCO2mix download (tab-separated, latin-1) or an ODRÉ JSON export."""
    data = await request.body()
    if len(data) > _LIMIT:
        raise HTTPException(413, "file over 64 MiB: split it")
    try:
        points = parse(data)
    except Eco2mixError as exc:
        raise HTTPException(422, str(exc)) from None
    store.write(lines(points))
    return ImportOut(points=len(points), first_ms=min(p.time_ms for p in points),
                     last_ms=max(p.time_ms for p in points))
