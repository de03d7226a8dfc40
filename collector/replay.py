"""Replaying dead letters: each is judged again by today's rules and written if it now passes.

A letter that still fails stays, with its reason; one whose points InfluxDB confirmed is removed.
Lines InfluxDB refuses again are set aside as a new letter by the writer, with the new reason.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from collector.admission import Admission
from collector.deadletters import DeadLetter, DeadLetterStore
from collector.points import decode
from collector.writer import INFLUX_WRITE_TOPIC, Writer, WriterStopped
from telemetry.errors import PayloadError
from telemetry.influx.client import InfluxClient


@dataclass
class ReplayReport:
    """Ids written (and removed) and ids kept, each kept one with why."""

    written: list[int] = field(default_factory=list)
    kept: dict[int, str] = field(default_factory=dict)


def replay(*, store: DeadLetterStore, influx: InfluxClient, ids: list[int] | None = None,
           limit: int = 1000, admission: Admission | None = None) -> ReplayReport:
    """Re-validate and write the given letters (default: the oldest `limit`); with
    `admission`, by the site configurations too, timestamps judged by today's clock."""
    report = ReplayReport()
    # One attempt per write: an operator replaying by hand wants an answer, not a retry loop.
    writer = Writer(influx=influx, dead_letters=store, give_up=_already_set())
    for letter in store.entries(limit=limit, ids=ids):
        try:
            writer.write(_lines(letter, admission))
        except PayloadError as exc:
            report.kept[letter.id] = exc.reason
            continue
        except WriterStopped as exc:
            report.kept[letter.id] = f"InfluxDB unavailable: {exc}"
            break  # the next ones would fail the same way
        store.remove([letter.id])
        report.written.append(letter.id)
    return report


def _lines(letter: DeadLetter, admission: Admission | None = None) -> list[str]:
    if letter.topic == INFLUX_WRITE_TOPIC:
        return [line for line in letter.payload.decode().split("\n") if line]
    return decode(letter.topic, letter.payload, received_ms=letter.received_ms,
                  admission=admission, now_ms=int(time.time() * 1000)).lines


def _already_set() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


def describe(letter: DeadLetter, *, width: int = 80) -> str:
    """One line for `dynamo collector dead-letters list`."""
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(letter.received_ms / 1000))
    preview = letter.payload[:width].decode(errors="replace").replace("\n", "\\n")
    return f"{letter.id}\t{when}\t{letter.topic}\t{letter.reason}\t{preview}"
