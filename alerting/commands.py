"""Commands to the alerting service on MQTT: acknowledge an alert, silence an equipment.

The api publishes them (QoS 1) on `dynamo/v1/{site}/alerting/commands` for its operators'
console; the broker's ACL lets only the `api` user (and `alerting` itself) write there, never a
gateway. Each is applied through the same `Engine.acknowledge` / `Engine.silence` as an SMS
reply or `dynamo alerts silence`, acts once per command id (a redelivery is skipped), and is
recorded in the store's `commands` table — a malformed or refused one too, with the reason.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from alerting.engine import Engine
from telemetry.errors import PayloadError, first_error

log = logging.getLogger(__name__)
Ident = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
# Longest silence a command may ask for: the console offers up to 24 h; a week covers a
# planned shutdown, and anything longer is a rule to change, not a silence.
MAX_SILENCE_MS = 7 * 24 * 3_600_000
_PAYLOAD_KEPT = 2000  # characters of a command kept in the store, enough to see what was wrong



class CommandPayload(BaseModel):
    """One command, as the api publishes it (docs/alerting.md, "Commands")."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: uuid.UUID
    action: Literal["ack", "silence"]
    alert_id: int | None = Field(default=None, ge=1)
    equipment: Ident | None = None
    until: AwareDatetime | None = None
    reason: str = Field(default="", max_length=200)
    by: str = Field(pattern=r"^(user|token):[^\s:]{1,64}$")
    via: Literal["console", "api"]
    at: AwareDatetime

    @model_validator(mode="after")
    def _fields_of_the_action(self) -> CommandPayload:
        if self.action == "ack" and self.alert_id is None:
            raise ValueError("an ack needs alert_id")
        if self.action == "silence" and (self.equipment is None or self.until is None
                                         or not self.reason.strip()):
            raise ValueError("a silence needs equipment, until and a reason")
        return self


def decode_command(payload: bytes) -> CommandPayload:
    """Parse a command; `PayloadError` says what is wrong."""
    try:
        return CommandPayload.model_validate_json(payload)
    except ValidationError as exc:
        raise PayloadError(first_error(exc)) from None


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    result: str  # applied, refused (by the engine), rejected (malformed, not ours), duplicate
    reason: str = ""


class CommandHandler:
    """Applies the commands of one engine's site, once each."""

    def __init__(self, *, engine: Engine) -> None:
        self.engine = engine

    def handle(self, payload: bytes) -> CommandOutcome:
        """Apply one command, or set it aside with the reason; never raises for bad input."""
        store = self.engine.store
        now_ms = int(time.time() * 1000)
        try:
            command = decode_command(payload)
        except PayloadError as exc:
            self._record(None, now_ms, "rejected", exc.reason, payload)
            return CommandOutcome("rejected", exc.reason)
        if store.command(str(command.id)) is not None:
            return CommandOutcome("duplicate")  # a redelivery: it acted the first time
        problem = self._check(command, now_ms)
        if problem:
            self._record(command, now_ms, "rejected", problem, payload)
            return CommandOutcome("rejected", problem)
        if command.action == "silence":
            assert command.equipment is not None and command.until is not None  # validated
            self.engine.silence(equipment=command.equipment,
                                until_ms=int(command.until.timestamp() * 1000),
                                reason=command.reason.strip(), by=command.by, via=command.via)
            outcome = CommandOutcome("applied")
        else:
            assert command.alert_id is not None
            login = command.by.split(":", 1)[1]
            self.engine.acknowledge(alert_id=command.alert_id, by=command.by,
                                    text=command.reason.strip(), via=command.via,
                                    name=f"{login} ({command.via})")
            # The engine records its answer as an ack row, as for an SMS reply: read it back.
            mine = [a for a in store.acks(alert_id=command.alert_id)
                    if a.contact == command.by and a.via == command.via]
            accepted = bool(mine) and mine[-1].accepted
            outcome = CommandOutcome("applied") if accepted else \
                CommandOutcome("refused", mine[-1].reason if mine else "not applied")
        self._record(command, now_ms, outcome.result, outcome.reason, payload)
        log.info("command %s (%s by %s via %s): %s %s", command.id, command.action, command.by,
                 command.via, outcome.result, outcome.reason)
        return outcome

    def _check(self, command: CommandPayload, now_ms: int) -> str:
        """Why this site's engine must not apply `command` ("" when it may)."""
        config = self.engine.config
        if command.action == "silence":
            known = set(config.equipment_names) | {rule.equipment for rule in config.rules}
            if command.equipment not in known:
                return f"no equipment {command.equipment!r} at site {config.site!r}"
            assert command.until is not None
            until_ms = int(command.until.timestamp() * 1000)
            if until_ms <= now_ms:
                return "the silence has already ended"
            if until_ms - now_ms > MAX_SILENCE_MS:
                return "a silence may last 7 days at most"
            return ""
        assert command.alert_id is not None
        alert = self.engine.store.get(command.alert_id)
        if alert is None or alert.site != config.site:
            return f"no alert {command.alert_id} at site {config.site!r}"
        if command.equipment is not None and command.equipment != alert.equipment:
            return f"alert {command.alert_id} is not about {command.equipment!r}"
        return ""

    def _record(self, command: CommandPayload | None, now_ms: int, result: str, reason: str,
                payload: bytes) -> None:
        text = payload[:_PAYLOAD_KEPT * 4].decode("utf-8", errors="replace")[:_PAYLOAD_KEPT]
        site = self.engine.config.site
        if command is None:
            action, by, via = _peek(payload)
            self.engine.store.record_command(
                command_id=None, site=site, at_ms=now_ms, action=action, alert_id=None,
                equipment=None, requested_by=by, via=via, result=result, reason=reason,
                payload=text)
            return
        self.engine.store.record_command(
            command_id=str(command.id), site=site, at_ms=now_ms, action=command.action,
            alert_id=command.alert_id, equipment=command.equipment, requested_by=command.by,
            via=command.via, result=result, reason=reason, payload=text)


def _peek(payload: bytes) -> tuple[str, str, str]:
    """What a rejected command said it was, for the record (never trusted)."""
    try:
        data = json.loads(payload)
    except ValueError:
        return "", "", ""
    if not isinstance(data, dict):
        return "", "", ""
    action, by, via = (str(data.get(key, ""))[:64] for key in ("action", "by", "via"))
    return action, by, via
