"""telemetry/logs.py: the standard library's records and structlog's events come out as one JSON
object per line with the standard keys; text for people when asked or on a terminal; the
command line's choice reaches a service."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
from collections.abc import Iterator

import pytest
import structlog

from telemetry.logs import bind_process_keys, configure_logging, fields, get_logger, wants_json


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_stdlib_and_structlog_lines_carry_the_standard_keys() -> None:
    out = io.StringIO()
    configure_logging("gateway", fmt="json", stream=out)
    bind_process_keys(site="ariege", gateway="freezer-gw")
    logging.getLogger("gateway.agent").warning(
        "device %s: %s", "freezer-meter", "no connection",
        extra=fields(equipment="freezer", sequence=41, device="freezer-meter"))
    get_logger("gateway.forwarder").info("spool replaying", equipment="dryer", count=3)
    logging.getLogger("gateway.agent").debug("below the level: not written")
    first, second = _lines(out)
    assert list(first)[:9] == ["ts", "level", "event", "service", "logger", "site", "gateway",
                               "equipment", "sequence"]
    assert {k: first[k] for k in ("level", "event", "service", "logger", "site", "gateway",
                                  "equipment", "sequence", "device")} == {
        "level": "warning", "event": "device freezer-meter: no connection",
        "service": "gateway", "logger": "gateway.agent", "site": "ariege",
        "gateway": "freezer-gw", "equipment": "freezer", "sequence": 41,
        "device": "freezer-meter"}
    assert str(first["ts"]).endswith("Z")  # UTC
    assert {k: second[k] for k in ("level", "event", "logger", "equipment", "count", "site")} \
        == {"level": "info", "event": "spool replaying", "logger": "gateway.forwarder",
            "equipment": "dryer", "count": 3, "site": "ariege"}


def test_french_words_stay_readable_and_tracebacks_are_one_string() -> None:
    out = io.StringIO()
    configure_logging("alerting", fmt="json", stream=out)
    try:
        raise ValueError("porte ouverte « cellule »")
    except ValueError:
        logging.getLogger("alerting.service").exception("évaluation échouée")
    [line] = out.getvalue().splitlines()
    assert "évaluation échouée" in line and "\\u00e9" not in line
    record = json.loads(line)
    assert record["level"] == "error"
    assert isinstance(record["exception"], str)
    assert record["exception"].startswith("Traceback") and "porte ouverte" in \
        record["exception"]


def test_text_for_people_and_auto_on_a_terminal() -> None:
    out = io.StringIO()
    configure_logging("collector", fmt="text", stream=out)
    logging.getLogger("collector.service").info("collector connected", extra={"site": "s1"})
    text = out.getvalue()
    assert "collector connected" in text and "site=s1" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])
    # auto: JSON into a file or a pipe (journald), text on a terminal.
    assert wants_json("auto", io.StringIO())
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            assert not wants_json("auto", terminal)
            assert wants_json("json", terminal)
    finally:
        os.close(leader)
        os.close(follower)


def test_stdout_is_the_one_current_at_each_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("api", fmt="json", stream="stdout")
    logging.getLogger("api").info("first")
    first = capsys.readouterr().out  # capsys hands out a new stream from here on
    logging.getLogger("api").info("second")
    second = capsys.readouterr().out
    assert json.loads(first)["event"] == "first"
    assert json.loads(second)["event"] == "second"
