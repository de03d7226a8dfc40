"""`dynamo api …`: the indicators api, its tokens and its rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker


@click.group()
def api() -> None:
    """The indicators api."""


@api.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def api_run(host: str, port: int) -> None:
    """Serve the api (settings: DYNAMO_* env); Prometheus metrics at its own /metrics."""
    import uvicorn

    from api.app import create_app
    from dynamo.commands.logs import service_logging

    service_logging("api")
    # log_config=None: uvicorn's loggers (access lines too) go through ours, as JSON lines.
    uvicorn.run(create_app(), host=host, port=port, log_level="info", log_config=None)


@api.group("token")
def token() -> None:
    """Api tokens (stored hashed in the api's database, DYNAMO_API_DATABASE_URL)."""


def _sessions() -> sessionmaker[Session]:
    from api.database import make_engine, migrate, sessions
    from api.settings import ApiSettings

    engine = make_engine(ApiSettings().api_database_url)
    migrate(engine)
    return sessions(engine)


@token.command("create")
@click.option("--role", required=True, type=click.Choice(["operator", "evaluator", "admin"]))
@click.option("--site", default=None, help="limit the token to one site (default: every site)")
@click.option("--name", default="", help="who or what holds it, for the token list")
def token_create(role: str, site: str | None, name: str) -> None:
    """Create a token and print it once: it is stored only as a hash."""
    import re

    from api.access.tokens import TokenRole, create_token

    if site is not None and not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", site):
        raise click.BadParameter(f"not a site id: {site!r}", param_hint="--site")
    with _sessions()() as db:
        click.echo(create_token(db, role=TokenRole(role), site=site, name=name or role))


@token.command("list")
def token_list() -> None:
    """Every token: id, role, site, name, created, revoked."""
    from api.access.tokens import list_tokens

    with _sessions()() as db:
        for row in list_tokens(db):
            revoked = row.revoked_at.isoformat() if row.revoked_at else "-"
            click.echo(f"{row.id}\t{row.role}\t{row.site or '*'}\t{row.name}\t"
                       f"{row.created_at.isoformat()}\t{revoked}")


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke a token by its id (see `token list`)."""
    from api.access.tokens import revoke_token

    with _sessions()() as db:
        if not revoke_token(db, token_id=token_id):
            raise click.ClickException(f"no active token {token_id}")
    click.echo(f"revoked {token_id}")


@api.command("rollup")
@click.option("--start", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%SZ"]),
              default=None, help="first hour (with a zone); default: --hours before now")
@click.option("--end", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%SZ"]),
              default=None, help="end, exclusive (with a zone); default: now")
@click.option("--hours", default=48, show_default=True, type=click.IntRange(1, 24 * 400))
def api_rollup(start: datetime | None, end: datetime | None, hours: int) -> None:
    """Recompute the hourly rollups (idempotent) from raw readings (settings: DYNAMO_* env)."""
    from api.accounting.factors import FactorTable
    from api.accounting.gwp import GwpTable
    from api.accounting.rollups import EmissionInputs, run_rollups, top_ups_from
    from api.database import make_engine, migrate, sessions
    from api.settings import ApiSettings
    from api.sites import SiteRegistry
    from api.store import ReadingsStore
    from telemetry.errors import ConfigError

    settings = ApiSettings()
    end = _utc(end) if end else datetime.now(UTC)
    start = _utc(start) if start else end - timedelta(hours=hours)
    if end <= start:
        raise click.BadParameter("--end must be after --start")
    # The same factor, GWP, top-up, batch and baseline sources as the api's indicators
    # (ghg_hourly, avoided_batches).
    engine = make_engine(settings.api_database_url)
    migrate(engine)
    try:
        factors = FactorTable.load(user_files=settings.api_factor_files)
        gwp = GwpTable.load(user_files=settings.api_refrigerant_files)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    records = sessions(engine)
    emissions = EmissionInputs(factors=factors, gwp=gwp, gwp_report=settings.api_gwp_report,
                               top_ups=top_ups_from(records), records=records)
    store = ReadingsStore(settings.influx())
    try:
        report = run_rollups(registry=SiteRegistry.load(settings.site_configs), store=store,
                             start=start, end=end,
                             around=timedelta(seconds=settings.boundary_lookaround_s),
                             max_gap=timedelta(seconds=settings.integral_max_gap_s),
                             emissions=emissions)
    finally:
        store.client.close()
        engine.dispose()
    click.echo(f"rollups {report.start.isoformat()} → {report.end.isoformat()}: "
               f"{report.hours} hours, {report.points} points written")


def _utc(moment: datetime) -> datetime:
    # "…Z" parses without a zone: it means UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@api.command("eco2mix-import")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
def api_eco2mix_import(files: tuple[Path, ...]) -> None:
    """Import RTE éCO2mix intensity files (download or ODRÉ JSON) into InfluxDB."""
    from api.accounting.eco2mix import Eco2mixError, lines, parse
    from api.settings import ApiSettings
    from api.store import ReadingsStore

    store = ReadingsStore(ApiSettings().influx())
    try:
        for file in files:
            try:
                points = parse(file.read_bytes())
            except Eco2mixError as exc:
                raise click.ClickException(f"{file}: {exc}") from None
            store.write(lines(points))
            click.echo(f"{file}: {len(points)} points")
    finally:
        store.client.close()
