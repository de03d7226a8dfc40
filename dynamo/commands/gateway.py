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

    asyncio.run(run())
