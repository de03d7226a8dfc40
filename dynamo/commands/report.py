"""`dynamo report …`: the evaluation report of a site over a period, as HTML or PDF.

It calls the api's own Python functions (`api.reports`) with the api's settings from the
environment (DYNAMO_*), like `dynamo api rollup`: it runs where the api's InfluxDB and
database are reachable, needs no running api and no token, and produces exactly what
`GET /api/v1/sites/{site}/reports/evaluation` answers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import click

_DATE_HELP = "a date in the period: YYYY-MM-DD, or YYYY-MM (month) or YYYY (year)"


def _day(text: str) -> date:
    """`2026-06-10`, `2026-06` (its first day) or `2026` (1 January)."""
    for layout in ("%Y-%m-%d", "%Y-%m", "%Y"):
        try:
            # strptime fills the missing month and day with 1: the period's first day.
            return datetime.strptime(text, layout).date()
        except ValueError:
            continue
    raise click.BadParameter(f"not a date: {text!r} ({_DATE_HELP})", param_hint="--date")


@click.command()
@click.option("--site", required=True, help="site id, e.g. ariege")
@click.option("--period", "kind", type=click.Choice(["day", "week", "month", "year"]),
              default=None, help="a calendar period in the site's time zone (with --date)")
@click.option("--date", "day", default=None, help=_DATE_HELP)
@click.option("--start", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z"]), default=None,
              help="period start with a zone, e.g. 2026-06-01T00:00:00+02:00 (with --end)")
@click.option("--end", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z"]), default=None,
              help="period end (exclusive)")
@click.option("--format", "fmt", type=click.Choice(["html", "pdf"]), default="html",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="file to write")
@click.option("--lang", type=click.Choice(["fr", "en"]), default="fr", show_default=True)
def report(site: str, kind: str | None, day: str | None, start: datetime | None,
           end: datetime | None, fmt: str, out: Path, lang: str) -> None:
    """Write the evaluation report (energy, GHG by scope, avoided emissions, charts, factor
    sources, data coverage) of SITE over a period (settings: DYNAMO_* env)."""
    from api.accounting.evidence import RAW_LIMIT
    from api.accounting.factors import FactorTable
    from api.accounting.gwp import GwpTable
    from api.accounting.references import References
    from api.database import make_engine, migrate, sessions
    from api.periods import Calendar, PeriodError, calendar_period, explicit_period
    from api.reports import (
        PdfUnavailable,
        ReportError,
        ReportSources,
        assemble,
        render_html,
        render_pdf,
    )
    from api.settings import ApiSettings
    from api.sites import SiteRegistry
    from api.store import ReadingsStore

    settings = ApiSettings()
    registry = SiteRegistry.load(settings.site_configs)
    zones = sorted({eq.timezone for (s, _), eq in registry.equipment.items() if s == site})
    if not zones:
        raise click.BadParameter(f"no site {site!r} in {settings.site_configs}",
                                 param_hint="--site")
    try:
        if kind is not None and day is not None and start is None and end is None:
            period = calendar_period(kind=Calendar(kind), containing=_day(day),
                                     timezone=zones[0])
        elif start is not None and end is not None and kind is None and day is None:
            period = explicit_period(start=start, end=end)
        else:
            raise click.UsageError("give either --period and --date, or --start and --end")
    except PeriodError as exc:
        raise click.UsageError(str(exc)) from None
    if period.duration > RAW_LIMIT and (period.start_ms % 3_600_000 or
                                        period.end_ms % 3_600_000):
        raise click.UsageError("periods over 31 days are computed from hourly rollups: "
                               "--start and --end must fall on whole hours")
    engine = make_engine(settings.api_database_url)
    migrate(engine)
    store = ReadingsStore(settings.influx())
    try:
        with sessions(engine)() as db:
            sources = ReportSources(
                settings=settings, registry=registry, store=store, db=db,
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
    finally:
        store.client.close()
        engine.dispose()
    click.echo(f"{out}: {fmt} report of {site}, {period.label}")
