"""`dynamo modbus scan`: find the devices on a Modbus line and print their configuration."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import click
import yaml

# The shipped library: in a checkout, or where install.sh puts it on a Pi.
_LIBRARIES = (Path(__file__).resolve().parents[2] / "firmware-config" / "templates",
              Path("/etc/dynamo/templates"))


def _default_library() -> tuple[Path, ...]:
    return tuple(folder for folder in _LIBRARIES if folder.is_dir())[:1]


@click.group()
def modbus() -> None:
    """Modbus tools for the technician at the Pi."""


@modbus.command("scan")
@click.option("--serial", "serial_port", default=None, help="serial port, e.g. /dev/ttyUSB0")
@click.option("--tcp", "tcp_host", default=None, help="Modbus TCP host[:port] (port 502)")
@click.option("--units", default="1-32,247", show_default=True,
              help="unit ids to try, e.g. 1-247 or 1,2,10-20")
@click.option("--baudrate", "baudrates", multiple=True, type=int,
              help="serial speeds to try (repeat); default: the usual ones, 9600 first")
@click.option("--parity", "parities", multiple=True, type=click.Choice(["N", "E", "O"]),
              help="serial parities to try (repeat); default N, E, O")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.05, 5), default=0.3,
              show_default=True, help="seconds to wait for one answer")
@click.option("--time-limit", "time_limit_s", type=click.FloatRange(1, 3600), default=60,
              show_default=True, help="seconds for the whole scan; what is left is listed")
@click.option("--every-setting", is_flag=True,
              help="go on with other speeds after a responder is found (a mixed bus)")
@click.option("--templates", "template_dirs", multiple=True, type=click.Path(path_type=Path),
              help="template folder(s) to match against (default: the shipped library)")
@click.option("--equipment", default="unassigned", show_default=True,
              help="equipment id written in the fragment")
def scan_command(serial_port: str | None, tcp_host: str | None, units: str,
                 baudrates: tuple[int, ...], parities: tuple[str, ...], timeout_s: float,
                 time_limit_s: float, every_setting: bool, template_dirs: tuple[Path, ...],
                 equipment: str) -> None:
    """Try the usual settings and unit ids, identify each responder, print a configuration.

    The `devices:` fragment goes to stdout, ready to paste in a gateway configuration; what
    was found and left untried goes to stderr.
    """
    from gateway.scan import (
        BAUDRATES,
        PARITIES,
        Setting,
        fragment,
        parse_units,
        scan,
        serial_settings,
    )
    from telemetry.errors import ConfigError
    from telemetry.loader import load_templates

    if (serial_port is None) == (tcp_host is None):
        raise click.UsageError("give exactly one of --serial PORT or --tcp HOST[:PORT]")
    try:
        unit_ids = parse_units(units)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--units") from None
    templates = {}
    try:
        for folder in template_dirs or _default_library():
            templates.update(load_templates(folder))
    except ConfigError as exc:
        raise click.ClickException(f"templates refused:\n{exc}") from None
    if tcp_host is not None:
        host, _, port = tcp_host.partition(":")
        settings = [Setting(host=host, port=int(port) if port else 502)]
    else:
        assert serial_port is not None
        settings = serial_settings(serial_port, baudrates or BAUDRATES, parities or PARITIES)
    report = asyncio.run(scan(settings, unit_ids, templates, timeout_s=timeout_s,
                              time_limit_s=time_limit_s, every_setting=every_setting))
    for responder in report.responders:
        fits = ", ".join(m.model for m in responder.matches) or "no template fits"
        ident = " ".join(f"{k}={v!r}" for k, v in responder.identification.items())
        click.echo(f"unit {responder.unit_id} at {responder.setting}: {fits}"
                   + (f" ({ident})" if ident else ""), err=True)
        if len(responder.matches) > 1 and responder.model is None:
            click.echo("  several templates fit equally: choose by the device's label", err=True)
    for left in report.untried:
        click.echo(f"not tried (time limit): {left}", err=True)
    click.echo(f"{len(report.responders)} responder(s), {report.attempts} unit id(s) tried in "
               f"{report.elapsed_s:.1f} s", err=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    click.echo(f"# dynamo modbus scan, {stamp}. Every point is recorded under a generic role:\n"
               "# give the ones an indicator needs their role (docs/roles.md), and name the\n"
               "# devices and their equipment.")
    click.echo(yaml.safe_dump(fragment(report, templates, equipment=equipment),
                              sort_keys=False, allow_unicode=True, width=100), nl=False)
    if not report.responders:
        raise SystemExit(1)
