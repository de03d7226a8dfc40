"""Commands to the alerting service: acknowledge an alert, silence an equipment.

The api does not import alerting: it publishes a command (QoS 1, through its one MQTT client,
`api.broker.BrokerMonitor`) on `dynamo/v1/{site}/alerting/commands`, and the alerting service
applies it exactly as it applies an SMS reply "OK 42" or `dynamo alerts silence`. The payload is
a contract with `alerting/commands.py` (docs/alerting.md, "Commands from the api"). What the
service did with it is read back from its store (`AlertHistoryReader.command`).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, Field, StringConstraints

from api.alerts.history import AlertHistoryReader
from telemetry.topics import alert_commands_topic

Via = Literal["console", "api"]
# The console's choices of duration; the api accepts any number of minutes up to a week (the
# alerting service refuses longer silences).
SILENCE_MINUTES = (30, 60, 240, 1440)
MAX_SILENCE_MIN = 7 * 24 * 60
_SEPARATORS = re.compile(r"[\s:]+")


Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class AcknowledgementIn(BaseModel):
    """Acknowledge a firing alert, as an SMS reply "OK 42" does."""

    reason: Reason = Field(default="", description="optional note, kept with the ack")


class SilenceIn(BaseModel):
    """Hold the SMS about one equipment for a while (maintenance); alerts are still recorded."""

    equipment: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    minutes: int = Field(ge=1, le=MAX_SILENCE_MIN)
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                             max_length=200)]


class CommandAccepted(BaseModel):
    """The broker has the command; the alerting service applies it within a second or so."""

    command_id: str
    status: str = Field(description="where to see what the alerting service did with it")


class CommandError(Exception):
    """A command the api does not send: `code` says why (translated at each boundary)."""

    code = "refused"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NoSuchAlert(CommandError):
    code = "no_such_alert"


class AlertNotFiring(CommandError):
    code = "not_firing"


class AlreadyAcknowledged(CommandError):
    code = "already_acknowledged"


class CommandNotSent(CommandError):
    """The broker did not take the command (not connected, refused, no acknowledgement)."""

    code = "not_sent"


class Publisher(Protocol):
    def publish(self, *, topic: str, payload: bytes, timeout_s: float = 5.0) -> str | None: ...



def actor(kind: Literal["user", "token"], name: str) -> str:
    """`user:<login>` or `token:<name>`: who asked, as the alerting service records it."""
    # The alerting service accepts no space or colon after the kind.
    cleaned = _SEPARATORS.sub("-", name.strip())[:64] or "-"
    return f"{kind}:{cleaned}"


def acknowledge(broker: Publisher, reader: AlertHistoryReader, *, site: str, alert_id: int,
                by: str, via: Via, reason: str = "") -> str:
    """Ask the alerting service to acknowledge `alert_id` of `site`; the command's id once the
    broker has it. Refused here, before anything is sent, when the store shows the alert
    unknown (`NoSuchAlert`), not firing, or already acknowledged."""
    found = reader.history(site=site, alert_id=alert_id, limit=1)
    if not found:
        raise NoSuchAlert(f"no alert {alert_id} at site {site!r}")
    alert = found[0]
    if alert.state != "firing":
        raise AlertNotFiring(f"alert {alert_id} is {alert.state}, not firing")
    if alert.acknowledged_at is not None:
        raise AlreadyAcknowledged(f"alert {alert_id} was acknowledged by "
                                  f"{alert.acknowledged_by} ({alert.acknowledged_via})")
    return _send(broker, site=site, action="ack", alert_id=alert_id, equipment=alert.equipment,
                 until=None, reason=reason, by=by, via=via)


def silence(broker: Publisher, *, site: str, equipment: str, minutes: int, reason: str,
            by: str, via: Via) -> str:
    """Ask the alerting service to hold the SMS about `equipment` for `minutes`."""
    until = datetime.now(UTC) + timedelta(minutes=minutes)
    return _send(broker, site=site, action="silence", alert_id=None, equipment=equipment,
                 until=until, reason=reason, by=by, via=via)


def _send(broker: Publisher, *, site: str, action: str, alert_id: int | None, equipment: str,
          until: datetime | None, reason: str, by: str, via: Via) -> str:
    command_id = str(uuid.uuid4())
    payload = {"id": command_id, "action": action, "alert_id": alert_id, "equipment": equipment,
               "until": None if until is None else until.isoformat(), "reason": reason,
               "by": by, "via": via, "at": datetime.now(UTC).isoformat()}
    problem = broker.publish(topic=alert_commands_topic(site),
                             payload=json.dumps(payload, ensure_ascii=False).encode())
    if problem is not None:
        raise CommandNotSent(problem)
    return command_id
