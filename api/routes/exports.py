"""Exports of a site's indicators for a period and a set of equipment: CSV, XLSX, Parquet."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response

from api.accounting.indicators import IndicatorError, compute
from api.deps import IDENT, Db, Factors, Gwp, Registry, Settings, SitePeriod, Store
from api.reports.exports import (
    MEDIA_TYPES,
    ExportFormat,
    provenance,
    rows_of,
    to_csv,
    to_parquet,
    to_xlsx,
)
from api.routes.indicators import make_inputs

router = APIRouter(tags=["exports"])


@router.get("/sites/{site}/exports/indicators.{fmt}", response_class=Response,
            responses={200: {"content": {m: {} for m in MEDIA_TYPES.values()}}})
def export_indicators(
    request: Request, site: str, fmt: ExportFormat, registry: Registry, store: Store, db: Db,
    factors: Factors, gwp: Gwp, settings: Settings, period: SitePeriod,
    equipment: Annotated[list[str] | None, Query(
        description="equipment ids (repeat the parameter); default: all of the site")] = None,
) -> Response:
    """One row per figure, each with its provenance; the file names the period."""
    wanted = equipment or sorted(e for (s, e) in registry.equipment if s == site)
    outs = []
    for equipment_id in wanted:
        if not re.fullmatch(IDENT[1:-1], equipment_id):
            raise HTTPException(422, f"not an equipment id: {equipment_id[:64]!r}")
        info = registry.get(site, equipment_id)
        if info is None:
            raise HTTPException(404, f"no equipment {equipment_id!r} at site {site!r}")
        inputs = make_inputs(request, info, store, db, factors, gwp, settings, period)
        try:
            outs.append(compute(inputs, period=period))
        except IndicatorError as exc:
            raise HTTPException(422, str(exc)) from None
    rows = [row for out in outs for row in rows_of(out)]
    meta = provenance(outs, generated_at=datetime.now(UTC), version=request.app.version)
    if fmt is ExportFormat.CSV:
        body = to_csv(rows)
    elif fmt is ExportFormat.XLSX:
        body = to_xlsx(rows, meta)
    else:
        body = to_parquet(rows, meta)
    name = f"dynamo-{site}-{period.start:%Y%m%dT%H%MZ}-{period.end:%Y%m%dT%H%MZ}.{fmt.value}"
    return Response(body, media_type=MEDIA_TYPES[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
