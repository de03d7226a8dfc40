"""The writer: the collector's one owner of InfluxDB writes.

`write` returns only once InfluxDB confirmed every point, or set aside the points it refused:
- connection errors, timeouts, 5xx: retried with jittered exponential backoff, forever;
- 429, and 502/503/504 with a `Retry-After` (seconds or an HTTP-date; InfluxDB behind a proxy
  in maintenance): retried after the time the server gives, capped at 5 minutes;
- 401/403/404 (credentials, a missing database): an operator's fix, so retried too — data
  waits, it is never thrown away for a configuration mistake;
- 413: the batch is split in halves until each part fits;
- 400: InfluxDB 1.x writes the valid points of a batch and refuses the rest ("partial write").
  The batch is bisected (rewriting valid points is harmless: writes are idempotent) until the
  refused lines stand alone; those are dead-lettered with the server's reason.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from collector.deadletters import DeadLetterStore
from telemetry.influx.client import (
    InfluxClient,
    InfluxRejected,
    InfluxThrottled,
    InfluxTooLarge,
    InfluxUnavailable,
)

log = logging.getLogger(__name__)

INFLUX_WRITE_TOPIC = "influxdb-write"  # dead letters of refused lines carry this "topic"
_RETRYABLE_STATUS = frozenset({401, 403, 404})


class WriterStopped(Exception):
    """The collector is stopping while InfluxDB is still unavailable: the batch was not written."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Jittered exponential backoff: a fleet of collectors does not retry in lockstep."""

    initial_s: float = 0.5
    max_s: float = 10.0

    def delay(self, attempt: int) -> float:
        growth: float = 2.0 ** min(attempt, 20)
        return min(self.max_s, self.initial_s * growth) * random.uniform(0.5, 1.0)


class Writer:
    """Writes batches of lines until confirmed; thread-safe (several writer threads may share)."""

    def __init__(
        self,
        *,
        influx: InfluxClient,
        dead_letters: DeadLetterStore,
        give_up: threading.Event,
        backoff: Backoff | None = None,
        on_retry: Callable[[], None] = lambda: None,
        on_rejected: Callable[[int, int], None] = lambda _points, _letters: None,
    ) -> None:
        self.influx = influx
        self._dead_letters = dead_letters
        self._give_up = give_up
        self._backoff = backoff or Backoff()
        self._on_retry = on_retry
        self._on_rejected = on_rejected

    def write(self, lines: list[str]) -> int:
        """Write `lines`; returns how many were refused (dead-lettered). Raises WriterStopped.

        An item may hold several lines joined by newlines (a message's, from the fast path):
        it is written as it is, and split into its lines only if InfluxDB refuses the batch.
        """
        refused: dict[str, list[str]] = {}
        self._write_parts(lines, refused)
        for reason, bad in refused.items():
            log.error("InfluxDB refused %d point(s): %s", len(bad), reason)
            self._dead_letters.add(topic=INFLUX_WRITE_TOPIC, reason=reason[:500],
                                   payload="\n".join(bad).encode(), kind="influx_refused")
        count = sum(len(bad) for bad in refused.values())
        if count:
            self._on_rejected(count, len(refused))
        return count

    def _write_parts(self, lines: list[str], refused: dict[str, list[str]]) -> None:
        try:
            self._write_retrying(lines)
        except InfluxRejected as exc:  # InfluxTooLarge among them
            if len(lines) == 1 and "\n" in lines[0]:
                lines = lines[0].split("\n")
            if len(lines) == 1:
                reason = f"larger than the server's body limit: {exc}" \
                    if isinstance(exc, InfluxTooLarge) else _reason(exc)
                refused.setdefault(reason, []).extend(lines)
                return
            self._write_parts(lines[:len(lines) // 2], refused)
            self._write_parts(lines[len(lines) // 2:], refused)

    def _write_retrying(self, lines: list[str]) -> None:
        attempt = 0
        while True:
            try:
                self.influx.write(lines)
                return
            except InfluxThrottled as exc:
                wait = exc.retry_after_s if exc.retry_after_s is not None \
                    else self._backoff.delay(attempt)
                problem: Exception = exc
            except InfluxUnavailable as exc:
                wait, problem = self._backoff.delay(attempt), exc
            except InfluxRejected as exc:
                if exc.status not in _RETRYABLE_STATUS:
                    raise
                wait, problem = self._backoff.delay(attempt), exc
            attempt += 1
            self._on_retry()
            log.warning("InfluxDB write failed (%s); retry %d in %.1f s", problem, attempt, wait,
                        extra={"retry": attempt, "wait_s": round(wait, 3)})
            if self._give_up.wait(wait):
                raise WriterStopped(str(problem))


def _reason(exc: InfluxRejected) -> str:
    """The server's reason without the per-request `dropped=N` count, so equal reasons group."""
    text = str(exc)
    cut = text.rfind(" dropped=")
    return text[:cut] if cut > 0 else text
