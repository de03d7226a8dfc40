"""Published reports: a report frozen when it is handed over, never changed afterwards.

`publish` computes the report with its manifest (`api.reports.manifest`), renders its PDF
(footer: the publication's id, and the one it replaces) and XLSX, and stores the three in one
row of `publications`, with the records it used in `publication_records` (which the records
service reads to refuse purging them). There is no update: a correction is a new publication
that names the one it `supersedes`, and each publication is superseded at most once.

The rendered bytes are stored in the row beside their sha256 (not as files under a data
directory): publication, manifest and documents are written in one transaction, saved by the
same database backup, and no file can go missing or drift from the hash the row states.
The id is chosen before rendering (site, local start date, random part), so the PDF's footer
carries it without holding a write transaction open while Chromium prints.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.types import JSON

from api.accounting.evidence import RAW_LIMIT
from api.periods import Calendar, Period, PeriodError, calendar_period, explicit_period
from api.records.tables import Base, UtcDateTime
from api.reports.exports import provenance, rows_of, to_xlsx
from api.reports.html import render_html
from api.reports.language import Lang
from api.reports.manifest import Capture, capture, code_version, manifest_sha256
from api.reports.pdf import render_pdf
from api.settings import ApiSettings
from api.sites import SiteRegistry
from telemetry.influx.client import InfluxClient


class Publication(Base):
    """One published report (rows are inserted, never updated)."""

    __tablename__ = "publications"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    period_start: Mapped[datetime] = mapped_column(UtcDateTime)
    period_end: Mapped[datetime] = mapped_column(UtcDateTime)
    period_label: Mapped[str] = mapped_column(String(200))
    published_by: Mapped[str] = mapped_column(String(200))
    published_at: Mapped[datetime] = mapped_column(UtcDateTime)
    lang: Mapped[str] = mapped_column(String(2))
    supersedes: Mapped[str | None] = mapped_column(
        String(120), ForeignKey("publications.id", ondelete="RESTRICT"), nullable=True,
        unique=True)
    code_version: Mapped[str] = mapped_column(String(120))
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    # Loaded only when downloaded: a list of publications reads no document.
    pdf: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    pdf_sha256: Mapped[str] = mapped_column(String(64))
    xlsx: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    xlsx_sha256: Mapped[str] = mapped_column(String(64))


class PublicationRecord(Base):
    """A record a publication rests on (kind, id, the version it read)."""

    __tablename__ = "publication_records"

    publication_id: Mapped[str] = mapped_column(
        String(120), ForeignKey("publications.id", ondelete="RESTRICT"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    record_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class PublicationError(ValueError):
    """A publication that cannot be made or found; `status` is the api's answer."""

    status = 422


class PublicationNotFound(PublicationError):
    status = 404


class PublicationConflict(PublicationError):
    status = 409


@dataclass(frozen=True, slots=True)
class Sources:
    """What publishing and verifying read: the api's settings, sites, InfluxDB and a way to
    open a database session (a fresh one per computation, so every record row it loads is
    seen loading)."""

    settings: ApiSettings
    registry: SiteRegistry
    client: InfluxClient
    sessions: Callable[[], Session]


def period_of(request: dict[str, str], *, timezone: str) -> Period:
    """The period a publication request names: `{"period": "week", "date": "2026-06-10"}`
    (a calendar period in the site's zone) or `{"start": …, "end": …}` (ISO 8601 with a zone)."""
    keys = set(request)
    try:
        if keys == {"period", "date"}:
            found = calendar_period(kind=Calendar(request["period"]),
                                    containing=date.fromisoformat(request["date"]),
                                    timezone=timezone)
        elif keys == {"start", "end"}:
            found = explicit_period(start=datetime.fromisoformat(request["start"]),
                                    end=datetime.fromisoformat(request["end"]))
        else:
            raise PeriodError("give either period and date, or start and end")
    except ValueError as exc:  # PeriodError, and a bad date, time or calendar kind
        raise PublicationError(str(exc)) from None
    if found.duration > RAW_LIMIT and (found.start_ms % 3_600_000 or found.end_ms % 3_600_000):
        raise PublicationError("periods over 31 days are computed from hourly rollups: start "
                               "and end must fall on whole hours")
    return found


def site_timezone(registry: SiteRegistry, site: str) -> str:
    zone = registry.timezone(site)
    if zone is None:
        raise PublicationNotFound(f"no site {site!r}")
    return zone


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _new_id(site: str, period: Period, timezone: str) -> str:
    local = period.start.astimezone(ZoneInfo(timezone))
    return f"{site}-{local:%Y%m%d}-{secrets.token_hex(3)}"


def footer(pub_id: str, *, published_at: datetime, supersedes: str | None, digest: str,
           timezone: str, lang: Lang) -> str:
    """The line printed at the foot of every page of a published PDF."""
    when = published_at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
    if lang == "en":
        text = f"Published report {pub_id} — {when} — manifest sha256 {digest[:16]}"
        return text + (f" — supersedes {supersedes}" if supersedes else "")
    text = f"Rapport publié {pub_id} — {when} — empreinte du manifeste {digest[:16]}"
    return text + (f" — remplace {supersedes}" if supersedes else "")


def get(db: Session, site: str, pub_id: str) -> Publication:
    row = db.get(Publication, pub_id)
    if row is None or row.site != site:
        raise PublicationNotFound(f"no published report {pub_id!r} at site {site!r}")
    return row


def superseded_by(db: Session, pub_id: str) -> str | None:
    return db.scalar(select(Publication.id).filter_by(supersedes=pub_id))


def listing(db: Session, site: str) -> list[Publication]:
    """The site's publications, newest first."""
    return list(db.scalars(select(Publication).filter_by(site=site)
                           .order_by(Publication.published_at.desc(), Publication.id)))


def _check_supersedes(sources: Sources, site: str, supersedes: str | None) -> None:
    if supersedes is None:
        return
    with sources.sessions() as db:
        get(db, site, supersedes)
        later = superseded_by(db, supersedes)
    if later is not None:
        raise PublicationConflict(f"{supersedes} is already superseded by {later}: correct "
                                  f"{later} instead")


def _xlsx(result: Capture, *, pub_id: str, supersedes: str | None, digest: str,
          published_at: datetime) -> bytes:
    outs = [m.indicators for m in result.report.machines]
    rows = [row for out in outs for row in rows_of(out)]
    code = code_version()
    meta = provenance(outs, generated_at=published_at,
                      version=f"{code['version']} ({code['commit']})")
    meta.update({"publication": pub_id, "supersedes": supersedes or "",
                 "manifest_sha256": digest,
                 "inputs_sha256": result.manifest["digests"]["inputs"]})
    return to_xlsx(rows, meta)


def publish(sources: Sources, *, site: str, request: dict[str, str], actor: str,
            lang: Lang = "fr", supersedes: str | None = None) -> Publication:
    """Compute, render and store the report of `site` over the requested period.

    `PdfUnavailable` (no Chromium) and `ReportError` (indicators refuse the period) pass
    through: nothing is stored then."""
    timezone = site_timezone(sources.registry, site)
    period = period_of(request, timezone=timezone)
    _check_supersedes(sources, site, supersedes)
    published_at = datetime.now(UTC)
    result = capture(settings=sources.settings, registry=sources.registry,
                     client=sources.client, sessions=sources.sessions, site=site,
                     period=period, request=request, generated_at=published_at)
    digest = manifest_sha256(result.manifest)
    pub_id = _new_id(site, period, timezone)
    html = render_html(result.report, lang=lang, footer=footer(
        pub_id, published_at=published_at, supersedes=supersedes, digest=digest,
        timezone=timezone, lang=lang))
    pdf = render_pdf(html)
    xlsx = _xlsx(result, pub_id=pub_id, supersedes=supersedes, digest=digest,
                 published_at=published_at)
    code = code_version()
    row = Publication(
        id=pub_id, site=site, period_start=period.start, period_end=period.end,
        period_label=period.label, published_by=actor, published_at=published_at, lang=lang,
        supersedes=supersedes, code_version=f"{code['version']}+{code['commit'][:12]}",
        manifest=result.manifest, manifest_sha256=digest, pdf=pdf, pdf_sha256=sha256(pdf),
        xlsx=xlsx, xlsx_sha256=sha256(xlsx))
    with sources.sessions() as db:
        db.add(row)
        db.flush()  # the publication first: its records point at it
        db.add_all(PublicationRecord(publication_id=pub_id, kind=r.kind, record_id=r.id,
                                     version=r.version) for r in result.records)
        try:
            db.commit()
        except IntegrityError:
            db.rollback()
            raise PublicationConflict(f"{supersedes} was superseded meanwhile; nothing was "
                                      "published") from None
    return row


def summary(db: Session, row: Publication) -> dict[str, Any]:
    """A publication as the api lists it (no manifest, no documents)."""
    later = superseded_by(db, row.id)
    return {
        "id": row.id, "site": row.site, "period": row.period_label,
        "start": row.period_start.isoformat(), "end": row.period_end.isoformat(),
        "published_by": row.published_by, "published_at": row.published_at.isoformat(),
        "lang": row.lang, "supersedes": row.supersedes,
        "status": "superseded" if later else "current", "superseded_by": later,
        "code_version": row.code_version,
        "manifest_sha256": row.manifest_sha256, "inputs_sha256":
            row.manifest.get("digests", {}).get("inputs"),
        "pdf_sha256": row.pdf_sha256, "xlsx_sha256": row.xlsx_sha256,
    }


def detail(db: Session, row: Publication) -> dict[str, Any]:
    """A publication with its manifest."""
    return {**summary(db, row), "manifest": row.manifest}
