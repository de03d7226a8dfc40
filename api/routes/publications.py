"""Published reports of a site: publish (evaluator or admin), list, read the manifest,
download the PDF and XLSX, verify against today's data. No route changes a publication: a
correction is a new one that `supersedes` it (PUT, PATCH and DELETE answer 405)."""

from __future__ import annotations

import base64
import hashlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from api.access.tokens import TokenRole
from api.deps import IDENT, Caller, Db, Registry, Settings, Store, require, visible_site
from api.periods import Calendar
from api.reports import PdfUnavailable, ReportError
from api.reports.exports import MEDIA_TYPES, ExportFormat
from api.reports.publications import (
    Publication,
    PublicationError,
    Sources,
    detail,
    get,
    listing,
    publish,
    summary,
)
from api.reports.verification import verify
from telemetry.errors import ConfigError

router = APIRouter(tags=["published reports"])
_BASE = "/sites/{site}/reports"
_ONE = _BASE + "/{publication_id}"
_EVALUATORS = [Depends(require(TokenRole.EVALUATOR))]
PublicationId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,120}$")]
Site = Annotated[str, Path(pattern=IDENT)]


class PublishIn(BaseModel):
    """A calendar period (`period` and `date`) or an explicit one (`start` and `end`)."""

    model_config = ConfigDict(extra="forbid")

    period: Calendar | None = None
    date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$",
                             description="YYYY-MM-DD, a local date inside the period")
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    lang: Literal["fr", "en"] = "fr"
    supersedes: str | None = Field(default=None, max_length=120,
                                   description="the id of the publication this corrects")

    @model_validator(mode="after")
    def _one_period(self) -> PublishIn:
        calendar = self.period is not None and self.date is not None
        explicit = self.start is not None and self.end is not None
        if calendar == explicit or (calendar and (self.start or self.end)) or (
                explicit and (self.period or self.date)):
            raise ValueError("give either period and date, or start and end")
        return self

    def request(self) -> dict[str, str]:
        """The period as the manifest keeps it (and a verification asks it again)."""
        if self.period is not None and self.date is not None:
            return {"period": self.period.value, "date": self.date}
        assert self.start is not None and self.end is not None
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def _sources(request: Request, settings: Settings, registry: Registry,
             store: Store) -> Sources:
    return Sources(settings=settings, registry=registry, client=store.client,
                   sessions=request.app.state.sessions)


def _http(exc: Exception) -> HTTPException:
    if isinstance(exc, PublicationError):
        return HTTPException(exc.status, str(exc))
    if isinstance(exc, PdfUnavailable):
        return HTTPException(503, str(exc))
    return HTTPException(422, str(exc))  # ReportError, ConfigError (a data file on disk)


def _found(db: Db, registry: Registry, caller: Caller, site: str, pub_id: str) -> Publication:
    visible_site(registry, caller, site)
    try:
        return get(db, site, pub_id)
    except PublicationError as exc:
        raise _http(exc) from None


@router.post(_BASE, status_code=201, dependencies=_EVALUATORS,
             responses={503: {"description": "Chromium is not available to print the PDF"}})
def publish_report(request: Request, site: Site, body: PublishIn, db: Db, caller: Caller,
                   settings: Settings, registry: Registry, store: Store) -> dict[str, Any]:
    """Freeze the report of the period: PDF, XLSX and the manifest of every input (files,
    records, series read) and figure. Answers the publication with its `id`."""
    visible_site(registry, caller, site)
    try:
        row = publish(_sources(request, settings, registry, store), site=site,
                      request=body.request(), actor=f"token:{caller.name}", lang=body.lang,
                      supersedes=body.supersedes)
    except (PublicationError, PdfUnavailable, ReportError, ConfigError) as exc:
        raise _http(exc) from None
    return detail(db, row)


@router.get(_BASE, dependencies=_EVALUATORS)
def list_reports(site: Site, db: Db, caller: Caller, registry: Registry
                 ) -> list[dict[str, Any]]:
    """The site's published reports, newest first; a superseded one says by which."""
    visible_site(registry, caller, site)
    return [summary(db, row) for row in listing(db, site)]


@router.get(_ONE, dependencies=_EVALUATORS)
def read_report(site: Site, publication_id: PublicationId, db: Db, caller: Caller,
                registry: Registry) -> dict[str, Any]:
    """One publication with its manifest."""
    return detail(db, _found(db, registry, caller, site, publication_id))


def _download(row: Publication, data: bytes, stated: str, media_type: str,
              suffix: str) -> Response:
    actual = hashlib.sha256(data).hexdigest()
    if actual != stated:
        raise HTTPException(500, f"stored {suffix} of {row.id} does not match its sha256 "
                                 f"({actual} ≠ {stated})")
    # RFC 9530 `Repr-Digest` (docs/sources.md#rfc-9530), and the hex digest as the manifest
    # and the listing state it.
    b64 = base64.b64encode(bytes.fromhex(actual)).decode()
    return Response(data, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{row.id}.{suffix}"',
        "X-Content-SHA256": actual, "Repr-Digest": f"sha-256=:{b64}:"})


@router.get(_ONE + "/pdf", dependencies=_EVALUATORS,
            responses={200: {"content": {"application/pdf": {}}}})
def download_pdf(site: Site, publication_id: PublicationId, db: Db, caller: Caller,
                 registry: Registry) -> Response:
    """The PDF as published; its sha256 in `X-Content-SHA256` and `Repr-Digest`."""
    row = _found(db, registry, caller, site, publication_id)
    return _download(row, row.pdf, row.pdf_sha256, "application/pdf", "pdf")


@router.get(_ONE + "/xlsx", dependencies=_EVALUATORS,
            responses={200: {"content": {MEDIA_TYPES[ExportFormat.XLSX]: {}}}})
def download_xlsx(site: Site, publication_id: PublicationId, db: Db, caller: Caller,
                  registry: Registry) -> Response:
    """The XLSX as published; its sha256 in `X-Content-SHA256` and `Repr-Digest`."""
    row = _found(db, registry, caller, site, publication_id)
    return _download(row, row.xlsx, row.xlsx_sha256, MEDIA_TYPES[ExportFormat.XLSX], "xlsx")


@router.get(_ONE + "/verification", dependencies=_EVALUATORS)
def verify_report(request: Request, site: Site, publication_id: PublicationId, db: Db,
                  caller: Caller, settings: Settings, registry: Registry,
                  store: Store) -> dict[str, Any]:
    """Recompute the report from today's data: each figure that moved (old, new) with the
    causes the manifest proves; `differences` is empty when nothing moved."""
    row = _found(db, registry, caller, site, publication_id)
    try:
        return verify(_sources(request, settings, registry, store), row)
    except (PublicationError, ReportError, ConfigError) as exc:
        raise _http(exc) from None
