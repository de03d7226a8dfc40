"""`dynamo`: the one command-line entry point to every component.

Each component's subcommands live in `dynamo/commands/<component>.py` and import their
component only when they run, so that a Raspberry Pi with the gateway's dependencies alone can
run `dynamo gateway run` and `dynamo config check`.
"""

from __future__ import annotations

import logging

import click

from dynamo.commands.alerts import alerts
from dynamo.commands.api import api
from dynamo.commands.collector import collector
from dynamo.commands.config import config
from dynamo.commands.dashboards import dashboards
from dynamo.commands.gateway import gateway
from dynamo.commands.report import report
from dynamo.commands.simulate import demo, simulate
from dynamo.commands.users import users


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """DYNAMO equipment monitoring."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise


for command in (config, gateway, collector, api, simulate, demo, dashboards, alerts,
                report, users):
    main.add_command(command)


if __name__ == "__main__":
    main()
