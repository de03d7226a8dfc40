"""`dynamo broker …`: the central broker's access control, generated from site configurations."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group()
def broker() -> None:
    """The central MQTT broker (Mosquitto)."""


@broker.command("acl")
@click.argument("sites", type=click.Path(path_type=Path, file_okay=False),
                default=Path("firmware-config/sites"))
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the ACL here (default: print it).")
@click.option("--users", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the gateway user names, one per line (broker-init reads them).")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 if --output/--users differ from what would be written.")
def broker_acl(sites: Path, output: Path | None, users: Path | None, check: bool) -> None:
    """Mosquitto's ACL for every gateway configuration below SITES.

    Each gateway may read and write exactly dynamo/v1/{site}/{gateway}/#; the service users
    keep their rights. Refuses (exit 2, file:line and why) an invalid configuration, a
    gateway id used twice across sites, a reserved id (ack, alerting, api, collector, fleet,
    healthcheck) or a broker user name that differs from the gateway id.
    """
    from telemetry.acl import load_gateways, render_acl, render_users
    from telemetry.errors import ConfigError

    try:
        gateways = load_gateways(sites)
    except ConfigError as exc:
        click.echo(f"{sites}: {len(exc.issues)} error(s)", err=True)
        for issue in exc.issues:
            click.echo(f"  {issue}", err=True)
        sys.exit(2)
    outputs = [(output, render_acl(gateways))]
    if users is not None:
        outputs.append((users, render_users(gateways)))
    if check:
        stale = [str(path) for path, text in outputs
                 if path is not None and (not path.is_file() or path.read_text() != text)]
        if stale:
            click.echo(f"out of date: {', '.join(stale)} (run without --check)", err=True)
            sys.exit(1)
        return
    for path, text in outputs:
        if path is None:
            click.echo(text, nl=False)
        else:
            path.write_text(text)
            click.echo(f"{path} written ({len(gateways)} gateway(s))", err=True)
