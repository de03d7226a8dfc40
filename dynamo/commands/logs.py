"""The logging of a long-running service, as the command line's options ask."""

from __future__ import annotations

import logging
from typing import cast

import click

from telemetry.logs import LogFormat, configure_logging


def service_logging(service: str) -> None:
    """JSON lines on stdout (journald) for `service`, or text when asked or on a terminal."""
    root = click.get_current_context().find_root()
    fmt = cast(LogFormat, root.params.get("log_format") or "auto")
    level = logging.DEBUG if root.params.get("verbose") else logging.INFO
    configure_logging(service, fmt=fmt, level=level, stream="stdout")
