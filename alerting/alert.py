"""One alert: a rule's condition on one subject (sensor or gateway), from pending to resolved."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class State(StrEnum):
    PENDING = "pending"  # condition true, minimum duration not reached yet
    FIRING = "firing"
    RESOLVED = "resolved"  # also a pending alert whose condition went away before firing


@dataclass
class Alert:
    """An alert with its notification policy copied in, so that it outlives a rule edit."""

    rule_id: str
    subject: str  # sensor id, gateway id, or Grafana fingerprint
    site: str
    equipment: str
    name: str
    severity: str
    contacts: tuple[str, ...]  # escalation order
    repeat_every_min: float
    escalate_after_min: float
    since_ms: int
    state: State = State.PENDING
    value: float | None = None
    unit: str = ""
    message: str | None = None  # the rule's template, if it overrides the default text
    source: str = "rule"  # "rule" or "grafana"
    id: int = 0  # the number operators quote in "OK 42"; set by the store
    fired_ms: int | None = None
    resolved_ms: int | None = None
    notified_ms: int | None = None  # first notification (None while silenced or not yet sent)
    last_sent_ms: int | None = None
    level: int = -1  # index in `contacts` of the last contact told
    acked_ms: int | None = None
    acked_by: str | None = None
    acked_via: str | None = None  # "sms" (a reply), "console" or "api" (a command)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule_id, self.subject)

    def told(self) -> tuple[str, ...]:
        """The contacts notified so far."""
        return self.contacts[: self.level + 1]
