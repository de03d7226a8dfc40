"""The evaluation report of a site over a period, as HTML or PDF (evaluator or admin)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.access.tokens import TokenRole
from api.accounting.references import References
from api.deps import Db, Factors, Gwp, Registry, Settings, SitePeriod, Store, require
from api.reports import (
    PdfUnavailable,
    ReportError,
    ReportSources,
    assemble,
    render_html,
    render_pdf,
)

router = APIRouter(tags=["reports"])


@router.get("/sites/{site}/reports/evaluation",
            dependencies=[Depends(require(TokenRole.EVALUATOR))],
            response_class=HTMLResponse,
            responses={200: {"content": {"text/html": {}, "application/pdf": {}}},
                       503: {"description": "PDF asked and Chromium is not available"}})
def evaluation_report(
    request: Request, site: str, period: SitePeriod, registry: Registry, store: Store, db: Db,
    factors: Factors, gwp: Gwp, settings: Settings,
    fmt: Annotated[Literal["html", "pdf"], Query(
        alias="format",
        description="html (self-contained, charts inline) or pdf (printed by Chromium)",
    )] = "html",
    lang: Annotated[Literal["fr", "en"], Query(description="report language")] = "fr",
) -> Response:
    """Energy and GHG per machine with scope split and avoided emissions, charts, method and
    factor sources, data coverage: the same figures as `…/indicators` over the same period."""
    references: References = request.app.state.references
    sources = ReportSources(settings=settings, registry=registry, store=store, db=db,
                            factors=factors, gwp=gwp, references=references)
    try:
        report = assemble(sources, site=site, period=period, generated_at=datetime.now(UTC))
    except ReportError as exc:
        raise HTTPException(422, str(exc)) from None
    html = render_html(report, lang=lang)
    name = f"dynamo-{site}-{period.label.replace(' ', '-').replace(':', '')}"
    if fmt == "html":
        return HTMLResponse(html, headers={
            "Content-Disposition": f'inline; filename="{name}.html"'})
    try:
        pdf = render_pdf(html)
    except PdfUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{name}.pdf"'})
