"""`dynamo dashboards …`: build Grafana dashboards from the configurations, push them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from dashboards import Dashboard

DEFAULT_CONFIG_DIR = Path("firmware-config/sites")
DEFAULT_OUT = Path("dashboards/generated")


@click.group()
def dashboards() -> None:
    """Grafana dashboards generated from the gateway configurations."""


_config_dir = click.option(
    "--config-dir", default=DEFAULT_CONFIG_DIR, show_default=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of gateway configurations (<site>/<gateway>.yaml).")
_lang = click.option("--lang", type=click.Choice(["fr", "en"]), default="fr", show_default=True,
                     help="Language of titles and descriptions.")


def _build(config_dir: Path, lang: str) -> list[Dashboard]:
    """The dashboards, or the configuration's errors listed and exit 1."""
    from dashboards import Lang, build_dashboards
    from telemetry.errors import ConfigError

    try:
        return build_dashboards(config_dir, Lang(lang))
    except ConfigError as exc:
        click.echo(f"{len(exc.issues)} configuration error(s):", err=True)
        for issue in exc.issues:
            click.echo(f"  {issue}", err=True)
    except FileNotFoundError as exc:
        click.echo(str(exc), err=True)
    sys.exit(1)


@dashboards.command("build")
@_config_dir
@click.option("--out", default=DEFAULT_OUT, show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder, one sub-folder per site (Grafana's file provider reads it).")
@_lang
@click.option("--check", is_flag=True,
              help="Write nothing; fail if the files in --out are not what a build would write.")
def dashboards_build(config_dir: Path, out: Path, lang: str, check: bool) -> None:
    """Generate the dashboards' JSON."""
    from dashboards import stale_files, write_dashboards

    built = _build(config_dir, lang)
    if check:
        stale = stale_files(built, out)
        for path in stale:
            click.echo(f"out of date: {path}", err=True)
        if stale:
            click.echo("run `dynamo dashboards build` and commit the result", err=True)
        sys.exit(1 if stale else 0)
    for path in write_dashboards(built, out):
        click.echo(str(path))


@dashboards.command("push")
@click.option("--url", envvar="DYNAMO_GRAFANA_URL", required=True,
              help="Grafana's base URL (env DYNAMO_GRAFANA_URL).")
@click.option("--token", envvar="DYNAMO_GRAFANA_TOKEN", required=True,
              help="A service account token with dashboard write rights "
                   "(env DYNAMO_GRAFANA_TOKEN; prefer the environment to the command line).")
@_config_dir
@_lang
def dashboards_push(url: str, token: str, config_dir: Path, lang: str) -> None:
    """Build the dashboards and upload them to a running Grafana (created or overwritten)."""
    from dashboards import PushError, push_dashboards

    built = _build(config_dir, lang)
    try:
        pushed = push_dashboards(built, url=url, token=token)
    except PushError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    for item in pushed:
        click.echo(f"{item.uid} → {item.folder_uid} {item.url} (version {item.version})")
