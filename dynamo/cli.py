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
from dynamo.commands.broker import broker
from dynamo.commands.collector import collector
from dynamo.commands.config import config
from dynamo.commands.dashboards import dashboards
from dynamo.commands.fleet import fleet
from dynamo.commands.gateway import gateway
from dynamo.commands.modbus import modbus
from dynamo.commands.pki import pki
from dynamo.commands.report import report
from dynamo.commands.simulate import demo, simulate
from dynamo.commands.users import users
from telemetry.logs import configure_logging


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.option("--log-format", type=click.Choice(["auto", "json", "text"]), default="auto",
              show_default=True, envvar="DYNAMO_LOG_FORMAT",
              help="Services' logs on stdout: JSON lines, or text for people (auto: text on a "
                   "terminal). One-shot commands log text on stderr.")
def main(verbose: bool, log_format: str) -> None:
    """DYNAMO equipment monitoring."""
    # One-shot commands print their results on stdout: their logs stay text on stderr.
    # Long-running services switch to their own (dynamo.commands.logs.service_logging).
    configure_logging("dynamo", fmt="text", stream="stderr",
                      level=logging.DEBUG if verbose else logging.INFO)
    # The database migrations say "Context impl SQLiteImpl." on every start: not news.
    logging.getLogger("alembic").setLevel(logging.DEBUG if verbose else logging.WARNING)


for command in (config, gateway, collector, api, simulate, demo, dashboards, alerts,
                report, users, broker, pki, modbus, fleet):
    main.add_command(command)


if __name__ == "__main__":
    main()
