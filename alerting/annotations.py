"""Alert events as InfluxDB points (`alert_events`), for dashboard annotations.

docs/influxdb-schema.md documents the measurement. The engine calls this for every change;
a write failure is logged and skipped (the SQLite store stays the record of truth).
"""

from __future__ import annotations

import logging

from alerting.engine import AlertEvent
from telemetry.influx.client import InfluxClient, InfluxError
from telemetry.influx.lineprotocol import line

log = logging.getLogger(__name__)
MEASUREMENT = "alert_events"


def event_line(event: AlertEvent) -> str:
    """One point: tags site, equipment, rule, severity, event; fields alert_id, title, value."""
    alert = event.alert
    fields: dict[str, float | int | bool | str] = {
        "alert_id": alert.id, "title": alert.name, "subject": alert.subject,
        "detail": event.detail}
    if alert.value is not None:
        fields["value"] = float(alert.value)
    # Microsecond offset by alert id: two events of one millisecond must not overwrite each other.
    return line(MEASUREMENT, {"site": alert.site, "equipment": alert.equipment,
                              "rule": alert.rule_id, "severity": alert.severity,
                              "event": event.kind}, fields, event.at_ms * 1000 + alert.id % 1000)


class InfluxAnnotations:
    """Callable sink for `Engine(on_event=...)`."""

    def __init__(self, *, influx: InfluxClient) -> None:
        self.influx = influx

    def __call__(self, event: AlertEvent) -> None:
        try:
            self.influx.write([event_line(event)], precision="u")
        except InfluxError as exc:
            log.warning("alert annotation not written: %s", exc)
