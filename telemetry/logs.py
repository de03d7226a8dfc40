"""Structured logs for every long-running service: one JSON object per line on stdout.

journald (or Docker, or Loki's promtail) collects stdout, and every service writes the same
keys, so that one query follows a gateway's messages from its poll to InfluxDB:

- always: `ts` (ISO 8601, UTC), `level`, `event` (what happened, in words), `service`,
  `logger`;
- when the line is about one of them: `site`, `gateway`, `equipment`, `sequence`
  (`SEQUENCE_KEYS`), and `exception` for a traceback.

Existing `logging.getLogger(__name__)` calls keep working: the standard library's records go
through the same processors (structlog's `ProcessorFormatter`), and the keys given with
`extra={"site": …}` become fields. When stdout is a terminal (or `fmt="text"`), lines are
rendered for people instead.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["auto", "json", "text"]
STANDARD_KEYS = ("ts", "level", "event", "service", "logger")
SEQUENCE_KEYS = ("site", "gateway", "equipment", "sequence")

# Keys every line of this process carries (the service; a gateway's site and name).
_static: dict[str, Any] = {}


def bind_process_keys(**keys: Any) -> None:
    """Add keys to every line of this process from now on, whichever thread logs it.

    (contextvars would not do: a new thread starts with an empty context.)
    """
    _static.update({k: v for k, v in keys.items() if v is not None})


def _add_static(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    for key, value in _static.items():
        event.setdefault(key, value)
    return event


def _json_line(event: Mapping[str, Any], **_kw: Any) -> str:
    # French words stay readable in journald (no \u00e9), anything else becomes its str().
    return json.dumps(event, ensure_ascii=False, default=str)


def _order(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    """Standard keys first: a line reads the same whatever the logger added."""
    first = {k: event.pop(k) for k in (*STANDARD_KEYS, *SEQUENCE_KEYS) if k in event}
    first.update(event)
    return first


def _shared(*, stdlib: bool) -> list[Processor]:
    chain: list[Processor] = [structlog.contextvars.merge_contextvars]
    if stdlib:  # `extra={...}` of a logging call: fields of the line
        chain.append(structlog.stdlib.ExtraAdder())
    chain += [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        _add_static,
    ]
    return chain


def wants_json(fmt: LogFormat, stream: TextIO) -> bool:
    """JSON unless asked for text, or `auto` on a terminal."""
    if fmt == "auto":
        isatty = getattr(stream, "isatty", None)
        return not (callable(isatty) and isatty())
    return fmt == "json"


class _Std(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stdout` (or `sys.stderr`) is when a line is written, not to the
    object it was at configuration: a test runner's or click's replaced streams come and go."""

    def __init__(self, name: Literal["stdout", "stderr"]) -> None:
        self._which = name  # (`_name` is the handler's own name in logging.Handler)
        super().__init__()

    @property
    def stream(self) -> TextIO:
        stream: TextIO = getattr(sys, self._which)
        return stream

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        return  # always the current one


def configure_logging(service: str, *, fmt: LogFormat = "auto", level: int = logging.INFO,
                      stream: TextIO | Literal["stdout", "stderr"] = "stdout") -> None:
    """Route this process's logs (structlog's and the standard library's) to `stream`
    (`"stdout"`/`"stderr"`: the process's current one at each line).

    Call once at start-up, before the service's threads start; calling again replaces the
    configuration (the command line configures text first, a service then its own).
    """
    _static.clear()
    bind_process_keys(service=service)
    handler: logging.Handler = _Std(stream) if isinstance(stream, str) \
        else logging.StreamHandler(stream)
    as_json = wants_json(fmt, getattr(sys, stream) if isinstance(stream, str) else stream)
    renderer: Processor = structlog.processors.JSONRenderer(serializer=_json_line) if as_json \
        else structlog.dev.ConsoleRenderer(colors=False)
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if as_json:
        # A traceback as one string: frames' locals could hold secrets.
        final += [structlog.processors.format_exc_info, _order]
    final.append(renderer)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared(stdlib=True), processors=final))
    root = logging.getLogger()
    # Replace ours; leave anyone else's (a test runner's capture) in place.
    for old in [h for h in root.handlers if getattr(h, "dynamo_logs", False)]:
        root.removeHandler(old)
    handler.dynamo_logs = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    structlog.configure(
        processors=[*_shared(stdlib=False), structlog.processors.StackInfoRenderer(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    # Libraries that talk too much at INFO.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # "setup plugin …"


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger writing through the configuration above."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


def fields(*, site: str | None = None, gateway: str | None = None,
           equipment: str | None = None, sequence: int | None = None,
           **more: Any) -> MutableMapping[str, Any]:
    """The standard keys for `extra=` of a standard-library logging call (None left out)."""
    out: dict[str, Any] = {"site": site, "gateway": gateway, "equipment": equipment,
                           "sequence": sequence, **more}
    return {k: v for k, v in out.items() if v is not None}
