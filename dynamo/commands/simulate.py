"""`dynamo simulate` and `dynamo demo`."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.option("--machine", type=click.Choice(["dryer", "freezer", "packaging", "all"]),
              default="all", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port-base", default=15020, show_default=True, type=int,
              help="dryer on this port, freezer on +1, packaging on +2")
@click.option("--speed", default=1.0, show_default=True, type=float,
              help="simulated seconds per wall second")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--meters", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON {machine: {variable: value}}: where the cumulative meters start")
def simulate(machine: str, host: str, port_base: int, speed: float, seed: int,
             meters: Path | None) -> None:
    """Serve simulated equipment over Modbus TCP until stopped."""
    from simulators import run

    start_meters = json.loads(meters.read_text(encoding="utf-8")) if meters else None
    run(machine=machine, host=host, port_base=port_base, speed=speed, seed=seed,
        meters=start_meters)


@click.command()
@click.option("--api-port", default=8000, show_default=True, type=int)
@click.option("--speed", default=60.0, show_default=True, type=float)
@click.option("--workdir", type=click.Path(path_type=Path), default=Path(".run/demo"),
              show_default=True)
def demo(api_port: int, speed: float, workdir: Path) -> None:
    """Run the whole chain locally: simulators → gateways → broker → collector → InfluxDB → api."""
    from dynamo.demo import run_demo

    run_demo(api_port=api_port, speed=speed, workdir=workdir)
