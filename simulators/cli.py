"""Command line of the simulators (`python -m simulators`, or `dynamo simulate` which calls
`cli_main`)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from datetime import datetime

from simulators.clock import SITE_TIMEZONE
from simulators.runner import MACHINES, run


def _pairs(items: Sequence[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or ():
        machine, sep, value = item.partition("=")
        if not sep or machine not in MACHINES or not value:
            raise argparse.ArgumentTypeError(
                f"{what} must be MACHINE=VALUE with MACHINE in {', '.join(MACHINES)}: {item!r}")
        out[machine] = value
    return out


def _start(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date-time: {text!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=SITE_TIMEZONE)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed so that `dynamo simulate` can show the same help)."""
    parser = argparse.ArgumentParser(
        prog="dynamo simulate",
        description="Play the DYNAMO machines (dryer, freezer, packaging line) as Modbus "
                    "devices, with the register maps of the site configurations.")
    parser.add_argument("--machine", action="append", choices=[*MACHINES, "all"],
                        help="machine to simulate (repeatable; default: all)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port-base", type=int, default=None,
                        help="dryer on BASE, freezer on BASE+1, packaging on BASE+2 "
                             "(0: free ports); default: the ports of the site configurations")
    parser.add_argument("--port", action="append", metavar="MACHINE=PORT",
                        help="port of one machine (repeatable)")
    parser.add_argument("--speed", type=float, default=60.0,
                        help="simulated seconds per wall second (default 60: an hour a minute)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--start", type=_start, default=None,
                        help="simulated start, ISO 8601 (default: today 07:00 Europe/Paris)")
    parser.add_argument("--config", action="append", metavar="MACHINE=FILE",
                        help="gateway configuration to serve instead of the Ariège site's")
    parser.add_argument("--serial", action="append", metavar="MACHINE=DEVICE",
                        help="also serve MACHINE in Modbus RTU on a serial device")
    parser.add_argument("--baudrate", type=int, default=9600)
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many wall seconds (default: run until stopped)")
    parser.add_argument("--status-every", type=float, default=60.0,
                        help="log the machines' state every N wall seconds (0: never)")
    parser.add_argument("--log-level", default="INFO")
    return parser


def cli_main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` and run the simulators in the foreground; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        ports = {m: int(p) for m, p in _pairs(args.port, "--port").items()}
        configs = _pairs(args.config, "--config")
        serial_ports = _pairs(args.serial, "--serial")
    except (argparse.ArgumentTypeError, ValueError) as exc:
        parser.error(str(exc))
    chosen = args.machine or ["all"]
    machines = MACHINES if "all" in chosen else tuple(chosen)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(machines=machines, host=args.host, ports=ports, port_base=args.port_base,
        speed=args.speed, seed=args.seed, start=args.start, configs=dict(configs),
        serial_ports=serial_ports, baudrate=args.baudrate, duration_s=args.duration,
        status_every_s=args.status_every or None)
    return 0
