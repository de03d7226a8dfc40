"""`dynamo gateway …`: the edge gateway."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from telemetry.errors import ConfigError


@click.group()
def gateway() -> None:
    """The edge gateway."""


@gateway.command("run")
@click.option("--config", "config_file", required=True, type=click.Path(path_type=Path),
              help="Gateway configuration (YAML).")
def gateway_run(config_file: Path) -> None:
    """Poll the configured devices and publish their readings until stopped."""
    from gateway.agent import Gateway
    from gateway.spool import SpoolError
    from telemetry.loader import load_gateway_config

    try:
        cfg = load_gateway_config(config_file)
    except ConfigError as exc:
        raise click.ClickException(f"configuration refused:\n{exc}") from None

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await Gateway(config=cfg).run(stop=stop)

    try:
        asyncio.run(run())
    except SpoolError as exc:
        raise click.ClickException(f"{exc}\n(spool_dir in {config_file}; the gateway needs "
                                   "to write there)") from None


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
    click.echo(f"on the Pi: sudo {bundle.directory}/install.sh --config gateway.yaml")


@gateway.command("spool")
@click.option("--config", "config_file", required=True, type=click.Path(path_type=Path),
              help="Gateway configuration (YAML).")
def gateway_spool(config_file: Path) -> None:
    """Show the spool: messages waiting, next sequence number, thinned and dropped counts."""
    from gateway.spool import Spool, SpoolError
    from telemetry.loader import load_gateway_config

    try:
        cfg = load_gateway_config(config_file)
        path = Path(cfg.spool_dir) / "spool.sqlite"
        if not path.exists():
            raise click.ClickException(f"no spool at {path} (the gateway never ran here)")
        spool = Spool(path=path, options=cfg.spool)
    except ConfigError as exc:
        raise click.ClickException(f"configuration refused:\n{exc}") from None
    except SpoolError as exc:
        raise click.ClickException(str(exc)) from None
    counters = spool.counters
    spool.close()
    click.echo(f"{path}: {counters.depth} message(s) waiting, next seq {counters.next_seq}, "
               f"{counters.thinned} thinned, {counters.dropped} dropped "
               f"(bound {cfg.spool.max_messages})")
