"""`dynamo gateway …`: the edge gateway."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import click

from dynamo.commands.logs import service_logging
from telemetry.errors import ConfigError


@click.group()
def gateway() -> None:
    """The edge gateway."""


@gateway.command("run")
@click.option("--config", "config_file", required=True, type=click.Path(path_type=Path),
              help="Gateway configuration (YAML).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=9731, show_default=True,
              envvar="DYNAMO_GATEWAY_METRICS_PORT",
              help="Serve Prometheus /metrics on this port (0: not at all).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
@click.option("--releases", "releases", type=click.Path(path_type=Path, file_okay=False),
              envvar="DYNAMO_RELEASES", default=None,
              help="Releases folder: take signed upgrades from the centre (needs `fleet`; "
                   "docs/fleet.md). Unset: no remote upgrade.")
@click.option("--upgrade-timeout", "upgrade_timeout_s", type=click.FloatRange(5, 86400),
              envvar="DYNAMO_UPGRADE_TIMEOUT_S", default=300.0, show_default=True,
              help="Seconds a new release has to report healthy before the guard rolls back.")
def gateway_run(config_file: Path, metrics_port: int, metrics_host: str,
                releases: Path | None, upgrade_timeout_s: float) -> None:
    """Poll the configured devices and publish their readings until stopped."""
    from gateway.agent import Gateway
    from gateway.spool import SpoolError
    from telemetry.loader import load_gateway_config
    from telemetry.logs import bind_process_keys
    from telemetry.metrics import serve_registry

    service_logging("gateway")
    try:
        cfg = load_gateway_config(config_file)
    except ConfigError as exc:
        raise click.ClickException(f"configuration refused:\n{exc}") from None
    bind_process_keys(site=cfg.site, gateway=cfg.gateway)
    remote = None
    if cfg.fleet is not None:  # configurations pushed from the centre (docs/fleet.md)
        from gateway.remote import RemoteConfig

        remote = RemoteConfig(base_file=config_file, base=cfg)
        cfg = remote.initial()
    restart: list[bool] = []  # the upgrader switched to a new release: exit to be restarted

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        agent = Gateway(config=cfg)
        if remote is not None:
            remote.attach(agent)
        tasks = [agent.run(stop=stop)] + ([remote.run(agent, stop)] if remote else [])
        if releases is not None and remote is not None:
            from gateway.upgrade import UpgradeOptions, Upgrader

            def restart_now() -> None:
                restart.append(True)
                stop.set()

            upgrader = Upgrader(config=cfg, public_key=remote.public_key_path,
                                options=UpgradeOptions(releases, timeout_s=upgrade_timeout_s),
                                restart=restart_now)
            upgrader.attach(agent)
            tasks.append(upgrader.run(agent, stop))
        stop_metrics = serve_registry(agent.metrics.registry, port=metrics_port,
                                      host=metrics_host, service="gateway") \
            if metrics_port else None
        try:
            await asyncio.gather(*tasks)
        finally:
            if stop_metrics is not None:
                stop_metrics()

    try:
        asyncio.run(run())
    except SpoolError as exc:
        raise click.ClickException(f"{exc}\n(spool_dir in {config_file}; the gateway needs "
                                   "to write there)") from None
    if restart:  # a new release is `current`: systemd starts it (Restart=always)
        from gateway.upgrade import RESTART_EXIT_CODE

        raise SystemExit(RESTART_EXIT_CODE)


@gateway.command("bundle")
@click.option("--platform", "platform", required=True, type=click.Choice(["aarch64", "armv7l"]),
              help="The Pi's architecture: aarch64 (64-bit OS) or armv7l (32-bit armhf).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Directory to write the bundle to (e.g. a USB stick).")
@click.option("--python", "python_version", default="3.11", show_default=True,
              help="The Pi's Python (Raspberry Pi OS Bookworm: 3.11).")
def gateway_bundle(platform: str, out: Path, python_version: str) -> None:
    """Build an offline installation bundle: wheels, installer, systemd unit, manifest."""
    from gateway.bundle import BundleError, build_bundle

    try:
        bundle = build_bundle(platform=platform, out=out, python_version=python_version)
    except BundleError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{bundle.directory}: {len(bundle.wheels)} wheel(s) for {bundle.platform}, "
               f"Python {bundle.python}")
    for deb in bundle.debs:  # armv7l: modules PyPI has no wheel of (docs/raspberry-pi.md)
        click.echo(f"  with Debian's {deb} (install.sh takes its module into the venv)")
    click.echo(f"on the Pi: sudo {bundle.directory}/install.sh --config gateway.yaml")


@gateway.command("releases-init")
@click.option("--releases", "releases", required=True,
              type=click.Path(path_type=Path, file_okay=False),
              help="The releases folder (the unit's DYNAMO_RELEASES), e.g. /opt/dynamo/releases.")
@click.option("--home", "home", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="The installed release: the folder holding its venv/, e.g. /opt/dynamo.")
def gateway_releases_init(releases: Path, home: Path) -> None:
    """Make the installed release current for remote upgrades and put the upgrade guard
    beside it (install.sh runs this; docs/fleet.md, "Remote upgrade")."""
    from gateway.upgrade import UpgradeError, init_releases

    try:
        init_releases(releases, home)
    except (UpgradeError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{releases}/current -> {home}; guard in {releases}/upgrade-guard.py")


@gateway.command("spool")
@click.option("--config", "config_file", required=True, type=click.Path(path_type=Path),
              help="Gateway configuration (YAML).")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=9731, show_default=True,
              envvar="DYNAMO_GATEWAY_METRICS_PORT",
              help="Where a running gateway serves its metrics, asked when it holds the file.")
def gateway_spool(config_file: Path, metrics_port: int) -> None:
    """Show the spool: messages waiting, next sequence number, thinned and dropped counts, and
    the messages the broker refused, by reason. With write-behind a running gateway holds the
    file: its metrics say the same then."""
    from gateway.spool import Spool, SpoolBusy, SpoolError
    from telemetry.loader import load_gateway_config

    try:
        cfg = load_gateway_config(config_file)
        path = Path(cfg.spool_dir) / "spool.sqlite"
        if not path.exists():
            raise click.ClickException(f"no spool at {path} (the gateway never ran here)")
        spool = Spool(path=path, options=cfg.spool, owner=False)
    except ConfigError as exc:
        raise click.ClickException(f"configuration refused:\n{exc}") from None
    except SpoolBusy as exc:
        _spool_from_metrics(str(exc), f"http://127.0.0.1:{metrics_port}/metrics")
        return
    except SpoolError as exc:
        raise click.ClickException(str(exc)) from None
    counters = spool.counters
    refused = Counter(spool.refused().values())
    totals = spool.refused_totals()
    spool.close()
    click.echo(f"{path}: {counters.depth} message(s) waiting, next seq {counters.next_seq}, "
               f"{counters.thinned} thinned, {counters.dropped} dropped "
               f"(bound {cfg.spool.max_messages})")
    click.echo(f"waiting for the collector's acknowledgement from seq {counters.floor} "
               f"({cfg.spool.acknowledgement})")
    if spool.ram_path is not None:
        click.echo(f"write-behind: recent messages in {spool.ram_path}, on the card after "
                   f"{cfg.spool.write_behind_s:g} s without acknowledgement")
    if counters.void is not None:
        click.echo(f"numbers {counters.void[0]}-{counters.void[1]} void since a power cut "
                   "(acknowledged before it, lost with it, or never used)")
    # Refused: kept in the spool and tried again; an ACL that forbids the topic is the usual cause.
    for reason, count in sorted(refused.items()):
        click.echo(f"refused by the broker, kept: {count} message(s): {reason}")
    if totals:
        click.echo("refusals since installation: " + ", ".join(
            f"{reason} × {count}" for reason, count in sorted(totals.items())))


def _spool_from_metrics(busy: str, url: str) -> None:
    """What a running gateway that holds its spool file says of it in its metrics."""
    from gateway.metrics import scrape

    try:
        values = scrape(url)
    except OSError as exc:  # urllib's URLError is one
        raise click.ClickException(f"{busy}; its metrics at {url} do not answer ({exc}): "
                                   "stop the service to read the file") from None

    def value(name: str) -> int:
        return int(values.get(f"dynamo_gateway_spool_{name}", 0))

    click.echo(f"{busy}; from its metrics ({url}):")
    click.echo(f"{value('messages')} message(s) waiting, next seq {value('next_seq')}, "
               f"{value('thinned_total')} thinned, {value('dropped_total')} dropped; oldest "
               f"{values.get('dynamo_gateway_spool_oldest_age_seconds', 0):.0f} s old")
    if value("void_numbers"):
        click.echo(f"{value('void_numbers')} number(s) void since a power cut (acknowledged "
                   "before it, lost with it, or never used)")
