"""`dynamo`: the one command-line entry point to every component.

Each subcommand imports its component only when it runs, so that a Raspberry Pi with the
gateway's dependencies alone can run `dynamo gateway run` and `dynamo config check`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import click

from telemetry.errors import ConfigError


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """DYNAMO equipment monitoring."""
    _logging(verbose)


# -- config -------------------------------------------------------------------------------------

@main.group()
def config() -> None:
    """Validate configuration files."""


@config.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def config_check(files: tuple[Path, ...]) -> None:
    """Check gateway configurations against their templates; list every error with its place."""
    from gateway.plan import plan_reads
    from telemetry.loader import load_gateway_config
    from telemetry.template import RegisterPoint

    failed = False
    for file in files:
        try:
            cfg = load_gateway_config(file)
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
                plan = plan_reads({p.key: p for p in registers}.values())
                click.echo(f"  {device.id} ({template.model}): {len(registers)} point(s) in "
                           f"{len(plan)} request(s) every {device.poll_interval_s:g} s")
    sys.exit(1 if failed else 0)


# -- gateway ------------------------------------------------------------------------------------

@main.group()
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


# -- collector ----------------------------------------------------------------------------------

@main.group()
def collector() -> None:
    """The collector (MQTT → InfluxDB)."""


@collector.command("run")
@click.option("--client-id", default="dynamo-collector", show_default=True)
@click.option("--share-group", default=None, help="Share the load with other collectors.")
@click.option("--dead-letters", type=click.Path(path_type=Path),
              default=Path("var/collector/dead-letters.sqlite"), show_default=True)
def collector_run(client_id: str, share_group: str | None, dead_letters: Path) -> None:
    """Write every gateway's telemetry to InfluxDB until stopped (settings: DYNAMO_* env)."""
    from collector.deadletters import DeadLetterStore
    from collector.service import Collector
    from telemetry.influx.setup import ensure_database
    from telemetry.settings import ServiceSettings

    settings = ServiceSettings()
    influx = settings.influx()
    ensure_database(influx)
    service = Collector(broker=settings.broker(), influx=influx,
                        dead_letters=DeadLetterStore(dead_letters), client_id=client_id,
                        share_group=share_group)
    service.start()
    _wait_for_signal()
    service.stop()


# -- api ----------------------------------------------------------------------------------------

@main.group()
def api() -> None:
    """The indicators api."""


@api.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def api_run(host: str, port: int) -> None:
    """Serve the api (settings: DYNAMO_* env)."""
    import uvicorn

    from api.app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="info")


# -- simulators and demo ------------------------------------------------------------------------

@main.command()
@click.option("--machine", type=click.Choice(["dryer", "freezer", "packaging", "all"]),
              default="all", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port-base", default=15020, show_default=True, type=int,
              help="dryer on this port, freezer on +1, packaging on +2")
@click.option("--speed", default=1.0, show_default=True, type=float,
              help="simulated seconds per wall second")
@click.option("--seed", default=42, show_default=True, type=int)
def simulate(machine: str, host: str, port_base: int, speed: float, seed: int) -> None:
    """Serve simulated equipment over Modbus TCP until stopped."""
    from simulators import run

    run(machine=machine, host=host, port_base=port_base, speed=speed, seed=seed)


@main.command()
@click.option("--api-port", default=8000, show_default=True, type=int)
@click.option("--speed", default=60.0, show_default=True, type=float)
@click.option("--workdir", type=click.Path(path_type=Path), default=Path(".run/demo"),
              show_default=True)
def demo(api_port: int, speed: float, workdir: Path) -> None:
    """Run the whole chain locally: simulators → gateways → broker → collector → InfluxDB → api."""
    from dynamo.demo import run_demo

    run_demo(api_port=api_port, speed=speed, workdir=workdir)


def _wait_for_signal() -> None:
    received = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: received.append(s))
    while not received:
        signal.pause()


if __name__ == "__main__":
    main()
