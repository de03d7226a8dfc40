"""Alert events on MQTT (`dynamo/v1/{site}/{gateway}/events/{equipment}`), JSON.

The central service publishes its own as the pseudo-gateway `alerting`; a gateway that alerted
locally while its uplink was down publishes the same payload under its own prefix when the
uplink returns (before draining its spool), so the central engine adopts those alerts instead
of sending them again.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alerting.engine import AlertEvent
from telemetry.errors import PayloadError, first_error

Ident = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class EventPayload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    v: Literal[1] = 1
    type: Literal["alert"]
    site: Ident
    gateway: Ident
    equipment: Ident
    ts: int = Field(ge=0)
    event: Literal["fired", "escalated", "acknowledged", "resolved"]
    alert_id: int = Field(ge=0)
    rule: str = Field(min_length=1, max_length=100)
    subject: str = Field(min_length=1, max_length=100)
    severity: str = ""
    name: str = ""
    value: float | None = None
    unit: str = ""
    detail: str = ""


def encode_event(event: AlertEvent, *, gateway: str) -> bytes:
    """The JSON payload of one alert event, published by `gateway`."""
    alert = event.alert
    return json.dumps({
        "v": 1, "type": "alert", "site": alert.site, "gateway": gateway,
        "equipment": alert.equipment, "ts": event.at_ms, "event": event.kind,
        "alert_id": alert.id, "rule": alert.rule_id, "subject": alert.subject,
        "severity": alert.severity, "name": alert.name, "value": alert.value,
        "unit": alert.unit, "detail": event.detail,
    }, ensure_ascii=False).encode()


def decode_event(payload: bytes) -> EventPayload:
    """Parse an alert event; `PayloadError` says what is wrong."""
    try:
        return EventPayload.model_validate_json(payload)
    except ValidationError as exc:
        raise PayloadError(first_error(exc)) from None
