"""`dynamo report …`: the evaluation report of a site over a period, and published reports.

`render` writes the report as HTML or PDF; `publish` freezes it (PDF, XLSX and manifest stored
in the api's database, as `POST /api/v1/sites/{site}/reports`); `verify` recomputes a
publication from today's data and lists what moved and why (exit 1 when anything moved);
`list` shows a site's publications.

They call the api's own Python functions (`api.reports`) with the api's settings from the
environment (DYNAMO_*), like `dynamo api rollup`: they run where the api's InfluxDB and
database are reachable, need no running api and no token, and give exactly what the api's
routes give.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from api.reports.publications import Sources

_DATE_HELP = "a date in the period: YYYY-MM-DD, or YYYY-MM (month) or YYYY (year)"
_ZONED = click.DateTime(["%Y-%m-%dT%H:%M:%S%z"])


def _day(text: str) -> date:
    """`2026-06-10`, `2026-06` (its first day) or `2026` (1 January)."""
    for layout in ("%Y-%m-%d", "%Y-%m", "%Y"):
        try:
            # strptime fills the missing month and day with 1: the period's first day.
            return datetime.strptime(text, layout).date()
        except ValueError:
            continue
    raise click.BadParameter(f"not a date: {text!r} ({_DATE_HELP})", param_hint="--date")


def _period_options(command: Any) -> Any:
    """--period/--date or --start/--end, as `render` always took them."""
    for option in reversed((
            click.option("--period", "kind",
                         type=click.Choice(["day", "week", "month", "year"]), default=None,
                         help="a calendar period in the site's time zone (with --date)"),
            click.option("--date", "day", default=None, help=_DATE_HELP),
            click.option("--start", type=_ZONED, default=None,
                         help="period start with a zone, e.g. 2026-06-01T00:00:00+02:00 "
                              "(with --end)"),
            click.option("--end", type=_ZONED, default=None, help="period end (exclusive)"))):
        command = option(command)
    return command


def _request(kind: str | None, day: str | None, start: datetime | None,
             end: datetime | None) -> dict[str, str]:
    """The period as the api's publication request names it."""
    if kind is not None and day is not None and start is None and end is None:
        return {"period": kind, "date": _day(day).isoformat()}
    if start is not None and end is not None and kind is None and day is None:
        return {"start": start.isoformat(), "end": end.isoformat()}
    raise click.UsageError("give either --period and --date, or --start and --end")


@contextmanager
def _api() -> Iterator[Sources]:
    """The api's settings, sites, InfluxDB and migrated database, from DYNAMO_*."""
    from api.database import make_engine, migrate, sessions
    from api.reports.publications import Sources
    from api.settings import ApiSettings
    from api.sites import SiteRegistry
    from api.store import ReadingsStore

    settings = ApiSettings()
    registry = SiteRegistry.load(settings.site_configs)
    engine = make_engine(settings.api_database_url)
    migrate(engine)
    store = ReadingsStore(settings.influx())
    try:
        yield Sources(settings=settings, registry=registry, client=store.client,
                      sessions=sessions(engine))
    finally:
        store.client.close()
        engine.dispose()


@click.group()
def report() -> None:
    """Evaluation reports: render one, publish one (frozen), verify or list publications."""


@report.command()
@click.option("--site", required=True, help="site id, e.g. ariege")
@_period_options
@click.option("--format", "fmt", type=click.Choice(["html", "pdf"]), default="html",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="file to write")
@click.option("--lang", type=click.Choice(["fr", "en"]), default="fr", show_default=True)
def render(site: str, kind: str | None, day: str | None, start: datetime | None,
           end: datetime | None, fmt: str, out: Path, lang: str) -> None:
    """Write the evaluation report (energy, GHG by scope, avoided emissions, charts, factor
    sources, data coverage) of SITE over a period (settings: DYNAMO_* env)."""
    from api.accounting.factors import FactorTable
    from api.accounting.gwp import GwpTable
    from api.accounting.references import References
    from api.reports import (
        PdfUnavailable,
        ReportError,
        ReportSources,
        assemble,
        render_html,
        render_pdf,
    )
    from api.reports.publications import PublicationError, period_of, site_timezone
    from api.store import ReadingsStore

    request = _request(kind, day, start, end)
    with _api() as api:
        try:
            period = period_of(request, timezone=site_timezone(api.registry, site))
        except PublicationError as exc:
            raise click.UsageError(str(exc)) from None
        settings = api.settings
        try:
            with api.sessions() as db:
                sources = ReportSources(
                    settings=settings, registry=api.registry,
                    store=ReadingsStore(api.client), db=db,
                    factors=FactorTable.load(user_files=settings.api_factor_files),
                    gwp=GwpTable.load(user_files=settings.api_refrigerant_files),
                    references=References.load())
                content = assemble(sources, site=site, period=period,
                                   generated_at=datetime.now(UTC))
            html = render_html(content, lang="en" if lang == "en" else "fr")
            if fmt == "html":
                out.write_text(html, encoding="utf-8")
            else:
                out.write_bytes(render_pdf(html))
        except (ReportError, PdfUnavailable) as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{out}: {fmt} report of {site}, {period.label}")


@report.command()
@click.option("--site", required=True, help="site id, e.g. ariege")
@_period_options
@click.option("--supersedes", default=None, help="id of the publication this one corrects")
@click.option("--lang", type=click.Choice(["fr", "en"]), default="fr", show_default=True)
def publish(site: str, kind: str | None, day: str | None, start: datetime | None,
            end: datetime | None, supersedes: str | None, lang: str) -> None:
    """Publish (freeze) the report of SITE over a period: PDF, XLSX and manifest stored in the
    api's database; prints the publication's id."""
    from api.reports import PdfUnavailable, ReportError
    from api.reports.publications import PublicationError, publish
    from telemetry.errors import ConfigError

    request = _request(kind, day, start, end)
    with _api() as api:
        try:
            row = publish(api, site=site, request=request, actor=f"cli:{getpass.getuser()}",
                          lang="en" if lang == "en" else "fr", supersedes=supersedes)
        except (PublicationError, PdfUnavailable, ReportError, ConfigError) as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(row.id)
    click.echo(f"  {row.period_label}, manifest sha256 {row.manifest_sha256}, "
               f"pdf sha256 {row.pdf_sha256}"
               + (f", supersedes {supersedes}" if supersedes else ""), err=True)


def _cause_line(cause: dict[str, Any]) -> str:
    kind = cause["kind"]
    if kind == "readings":
        counts = "; ".join(f"{r['read']}: {r['points_before']} → {r['points_after']} points"
                           for r in cause["reads"])
        return f"readings {cause['series']} ({counts})"
    if kind == "record":
        who = "; ".join(f"{a['action']} by {a['actor']} at {a['at']}" for a in cause["audit"])
        return (f"record {cause['record']} {cause['change']} (version "
                f"{cause['version_before']} → {cause['version_after']}"
                + (f"; {who}" if who else "") + ")")
    if kind == "data_file":
        names = cause["entries_added"] + cause["entries_changed"] + cause["entries_removed"]
        return (f"file {cause['file']} changed (sha256 {str(cause['sha256_before'])[:12]} → "
                f"{str(cause['sha256_after'])[:12]}; {', '.join(names)})")
    return f"{kind}: {json.dumps({k: v for k, v in cause.items() if k != 'kind'})}"


class _VerifyFailed(click.ClickException):
    """A verification that could not run: exit 2, apart from 1 (differences found)."""

    exit_code = 2


@report.command()
@click.argument("publication_id")
@click.option("--site", default=None, help="the publication's site (default: read from it)")
@click.option("--json", "as_json", is_flag=True, help="print the whole verification as JSON")
def verify(publication_id: str, site: str | None, as_json: bool) -> None:
    """Recompute a published report from today's data; print each figure that moved with its
    causes. Exit 0 when nothing moved, 1 when something did, 2 when it could not verify."""
    from api.reports import ReportError
    from api.reports.publications import Publication, PublicationError, get
    from api.reports.verification import verify as run
    from telemetry.errors import ConfigError

    with _api() as api:
        try:
            with api.sessions() as db:
                row = db.get(Publication, publication_id)
                row = get(db, site or (row.site if row else ""), publication_id)
            result = run(api, row)
        except (PublicationError, ReportError, ConfigError) as exc:
            raise _VerifyFailed(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        for diff in result["differences"]:
            click.echo(f"{diff['figure']}: {diff['old']} → {diff['new']}")
            for cause in diff["causes"]:
                click.echo(f"    {_cause_line(cause)}")
        if not result["differences"]:
            click.echo(f"{publication_id}: no difference (inputs sha256 "
                       f"{result['inputs_sha256_now']})")
    raise SystemExit(1 if result["differences"] else 0)


@report.command(name="list")
@click.option("--site", required=True, help="site id, e.g. ariege")
def list_publications(site: str) -> None:
    """The site's published reports, newest first."""
    from api.reports.publications import listing, summary

    with _api() as api, api.sessions() as db:
        for row in listing(db, site):
            about = summary(db, row)
            state = (f"superseded by {about['superseded_by']}" if about["superseded_by"]
                     else "current")
            replaces = f", supersedes {row.supersedes}" if row.supersedes else ""
            click.echo(f"{row.id}\t{row.period_label}\t{row.published_at.isoformat()}\t"
                       f"{row.published_by}\t{state}{replaces}")
