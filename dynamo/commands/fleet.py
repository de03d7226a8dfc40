"""`dynamo fleet …`: configurations pushed from the centre, signed, and the fleet's state
(docs/fleet.md)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import click

from telemetry.errors import ConfigError
from telemetry.fleet import FleetRow
from telemetry.payload import Status

_KEY_ENV = "DYNAMO_FLEET_KEY"


@click.group()
def fleet() -> None:
    """The gateways seen from the centre: signed configuration push, fleet status."""


@fleet.command("keygen")
@click.option("--out", "out", type=click.Path(path_type=Path, file_okay=False),
              default=Path("."), show_default=True,
              help="Folder for fleet.key (private, 0600) and fleet.pub (for the gateways).")
def fleet_keygen(out: Path) -> None:
    """Make the centre's Ed25519 key pair. fleet.pub goes to every gateway
    (/etc/dynamo/fleet.pub); fleet.key stays on the machine that pushes."""
    from telemetry.signing import SigningError, generate_keys

    try:
        generate_keys(out / "fleet.key", out / "fleet.pub")
    except SigningError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{out / 'fleet.key'} (private, 0600) and {out / 'fleet.pub'} written")


@fleet.command("push")
@click.argument("gateway")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="The configuration file (default: the gateway's below --sites).")
@click.option("--sites", type=click.Path(path_type=Path, file_okay=False),
              default=Path("firmware-config/sites"), show_default=True,
              help="Where the site configurations are.")
@click.option("--key", "key_file", type=click.Path(path_type=Path, dir_okay=False),
              envvar=_KEY_ENV, required=True, help=f"The centre's private key (${_KEY_ENV}).")
def fleet_push(gateway: str, config_file: Path | None, sites: Path, key_file: Path) -> None:
    """Validate GATEWAY's configuration, sign it and publish it (retained) for the gateway.

    The broker is DYNAMO_MQTT_* (a user the ACL lets write configurations: `api`). The gateway
    applies it, or refuses it and says why in its status: see `dynamo fleet status`."""
    from telemetry.fleet import FleetError, find_config, push
    from telemetry.settings import ServiceSettings

    try:
        file = config_file or find_config(gateway, sites)
        pushed = push(gateway=gateway, config_file=file, key_file=key_file,
                      broker=ServiceSettings().broker())
    except FleetError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{pushed.site}/{pushed.gateway}: version {pushed.version}, sha256 "
               f"{pushed.sha256[:12]} ({file}) published on {pushed.topic}")


@fleet.command("publish-bundle")
@click.argument("bundle", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--gateway", default=None, help="For this gateway only (its site from --sites).")
@click.option("--site", default=None, help="For every gateway of this site.")
@click.option("--version", "version", default=None,
              help="The release's name (default: the version of the bundle's dynamo wheel).")
@click.option("--sites", type=click.Path(path_type=Path, file_okay=False),
              default=Path("firmware-config/sites"), show_default=True,
              help="Where the site configurations are (to find --gateway's site).")
@click.option("--store", type=click.Path(path_type=Path, file_okay=False),
              envvar="DYNAMO_FLEET_BUNDLES", required=True,
              help="The api's bundle folder ($DYNAMO_FLEET_BUNDLES): the archive goes there.")
@click.option("--url", "url_base", envvar="DYNAMO_FLEET_BUNDLE_URL", required=True,
              help="The api's address as gateways reach it ($DYNAMO_FLEET_BUNDLE_URL), e.g. "
                   "https://dynamo.example.org")
@click.option("--key", "key_file", type=click.Path(path_type=Path, dir_okay=False),
              envvar=_KEY_ENV, required=True, help=f"The centre's private key (${_KEY_ENV}).")
def fleet_publish_bundle(bundle: Path, gateway: str | None, site: str | None,
                         version: str | None, sites: Path, store: Path, url_base: str,
                         key_file: Path) -> None:
    """Publish BUNDLE (a folder of `dynamo gateway bundle`) as an upgrade, signed.

    The archive goes to the api's bundle folder (served at /api/v1/fleet/bundles/{sha256});
    a signed notice with its SHA-256 and the manifest is published retained for the gateway
    or the site. Each gateway installs it beside its running release, switches, and goes back
    if the new one is not healthy in time: see `dynamo fleet status` (docs/fleet.md)."""
    from telemetry.bundle_notice import publish_bundle
    from telemetry.fleet import FleetError, find_config
    from telemetry.loader import load_gateway_config
    from telemetry.settings import ServiceSettings
    from telemetry.signing import SigningError

    if (gateway is None) == (site is None):
        raise click.UsageError("give exactly one of --gateway GW or --site SITE")
    try:
        if gateway is not None:
            found = load_gateway_config(find_config(gateway, sites)).site
            if site is not None and site != found:
                raise FleetError(f"gateway {gateway!r} is of site {found!r}, not {site!r}")
            site = found
        assert site is not None
        published = publish_bundle(bundle=bundle, site=site, gateway=gateway,
                                   key_file=key_file, broker=ServiceSettings().broker(),
                                   store=store, url_base=url_base, version=version)
    except (FleetError, SigningError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{site}/{gateway or '*'}: release {published.version}, archive "
               f"{published.archive_sha256[:12]} at {published.url}, sequence "
               f"{published.sequence}, published on {published.topic}")


@fleet.command("status")
@click.option("--site", default=None, help="Only this site's gateways.")
@click.option("--wait", "wait_s", type=click.FloatRange(0.1, 60), default=2.0,
              show_default=True, help="Seconds to collect the broker's retained statuses.")
def fleet_status(site: str | None, wait_s: float) -> None:
    """Every gateway the broker holds a status of: online, configuration, software, spool,
    last acknowledged seq, certificate expiry, age of its last status."""
    from telemetry.fleet import FleetError, read_fleet
    from telemetry.settings import ServiceSettings

    try:
        found = read_fleet(ServiceSettings().broker(), site=site, wait_s=wait_s)
    except FleetError as exc:
        raise click.ClickException(str(exc)) from None
    if not found:
        click.echo("no gateway status on the broker" + (f" for site {site}" if site else ""))
        return
    for line in format_table(found, now_ms=int(time.time() * 1000)):
        click.echo(line)


_HEADERS = ("SITE", "GATEWAY", "STATE", "CONFIG", "HASH", "SOFTWARE", "SPOOL", "ACK",
            "CERT EXPIRES", "LAST STATUS")


def format_table(found: list[FleetRow], *, now_ms: int) -> list[str]:
    """The status table's lines, a refused or rolled back configuration under its gateway."""
    cells = [_HEADERS]
    notes: dict[int, str] = {}
    for row in found:
        s = row.status
        age = row.age_s(now_ms)
        cells.append((
            row.site, row.gateway, s.state,
            _config(s),
            s.config_hash or "-", s.version or "-", _int(s.buffer_depth), _int(row.ack_upto),
            _day(s.cert_expires_ts), "-" if age is None else f"{age:.0f} s ago"))
        if s.config_refused is not None:
            notes[len(cells) - 1] = (f"  refused version {s.config_refused.version}: "
                                     f"{s.config_refused.reason}")
        if s.upgrade is not None and s.upgrade.state != "done":  # docs/fleet.md, upgrades
            _note(notes, len(cells) - 1, f"  upgrade to {s.upgrade.version}: {s.upgrade.state}"
                  + (f": {s.upgrade.reason}" if s.upgrade.reason else ""))
        if s.buffer_void is not None:  # docs/gateway.md, write-behind
            first, last = s.buffer_void
            _note(notes, len(cells) - 1, f"  power cut: numbers {first}-{last} void (lost with "
                  "the cut or never used)")
    widths = [max(len(c[i]) for c in cells) for i in range(len(_HEADERS))]
    lines = []
    for i, cell in enumerate(cells):
        lines.append("  ".join(v.ljust(w) for v, w in zip(cell, widths, strict=True)).rstrip())
        if i in notes:
            lines.append(notes[i])
    return lines


def _note(notes: dict[int, str], row: int, text: str) -> None:
    notes[row] = text if row not in notes else f"{notes[row]}\n{text}"


def _config(status: Status) -> str:
    """The pushed version, `installed` (the gateway's own file), or `-` for an offline status
    (the last will says nothing of the configuration)."""
    if status.config_version is not None:
        return str(status.config_version)
    return "-" if status.ts is None else "installed"


def _int(value: int | None) -> str:
    return "-" if value is None else str(value)


def _day(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")
