"""`dynamo config …`: validate configuration files."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from telemetry.errors import ConfigError


@click.group()
def config() -> None:
    """Validate configuration files."""


@config.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def config_check(files: tuple[Path, ...]) -> None:
    """Check gateway configurations against their templates; list every error with its place."""
    from gateway.plan import plan_reads, with_scale_factors
    from telemetry.loader import load_gateway_config
    from telemetry.template import RegisterPoint

    failed = False
    for file in files:
        try:
            cfg = load_gateway_config(file, check_expiry=True)
        except ConfigError as exc:
            failed = True
            click.echo(f"{file}: {len(exc.issues)} error(s)", err=True)
            for issue in exc.issues:
                click.echo(f"  {issue}", err=True)
            continue
        click.echo(f"{file}: ok — site {cfg.site}, gateway {cfg.gateway}, "
                   f"{len(cfg.devices)} device(s), "
                   f"{sum(len(d.sensors) for d in cfg.devices)} sensor(s)")
        for device in cfg.devices:
            template = cfg.templates[device.template]
            points = [cfg.point_of(device, s) for s in device.sensors]
            registers = [p for p in points if isinstance(p, RegisterPoint)]
            if registers:
                plan = plan_reads(with_scale_factors({p.key: p for p in registers}.values(),
                                                     template),
                                  max_gap=device.max_gap, max_count=device.max_registers)
                click.echo(f"  {device.id} ({template.model}): {len(registers)} point(s) in "
                           f"{len(plan)} request(s) every {device.poll_interval_s:g} s")
            elif template.protocol == "mqtt":
                topic = template.topic.replace("{name}", device.name)
                click.echo(f"  {device.id} ({template.model}): {len(points)} field(s) of "
                           f"local MQTT topic {topic}")
    sys.exit(1 if failed else 0)
