"""Alert rules of one site (YAML, validated on load with file:line:path errors).

Rules speak in sensor ids, or in roles + equipment resolved through the site's gateway
configurations, never in registers. `docs/alerting.md` documents the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alerting.messages import FIELDS, template_fields
from telemetry.errors import ConfigError, ConfigIssue
from telemetry.loader import YamlDocument, load_gateway_config
from telemetry.roles import ROLES
from telemetry.site import Device, GatewayConfig, Sensor

Ident = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
SensorId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
# E.164: what every SMS provider and a GSM modem accept.
Phone = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$")]
Minutes = Annotated[float, Field(ge=0, le=7 * 24 * 60)]
Language = Literal["fr", "en"]
Severity = Literal["info", "warning", "critical"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Contact(_Model):
    id: Ident
    name: str = Field(min_length=1, max_length=60)
    phone: Phone
    language: Language = "fr"


class Notify(_Model):
    """Who is told, in escalation order, and how often while nobody acknowledges."""

    contacts: tuple[Ident, ...] = Field(min_length=1)
    repeat_every_min: Minutes = 30.0  # 0: no repeat
    escalate_after_min: Minutes = 15.0  # 0: no escalation, everyone at once


class RateLimit(_Model):
    max_sms: int = Field(default=10, ge=1, le=1000)
    per_min: Minutes = 60.0


class _Rule(_Model):
    id: Ident
    name: str = Field(min_length=1, max_length=80, description="short French label")
    equipment: Ident
    severity: Severity = "warning"
    notify: Notify | None = None  # None: the file's `defaults`
    message: str | None = Field(default=None, max_length=300,
                                description="template overriding the default French text")
    # What to do, by language: appended to the firing, reminder and escalation SMS (the
    # stored-hay levels say what to do at each, docs/alerting.md).
    advice: dict[Language, str] = Field(default_factory=dict)

    @field_validator("advice")
    @classmethod
    def _short_advice(cls, value: dict[str, str]) -> dict[str, str]:
        for language, text in value.items():
            if not 0 < len(text.strip()) <= 200:
                raise ValueError(f"advice {language}: 1 to 200 characters (an SMS is read on "
                                 "a phone)")
        return value


    @field_validator("message")
    @classmethod
    def _known_fields(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            unknown = template_fields(value) - set(FIELDS)
        except ValueError as exc:
            raise ValueError(f"malformed template: {exc}") from None
        if unknown:
            raise ValueError(f"unknown placeholder(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(FIELDS)}")
        return value


class _SensorRule(_Rule):
    sensor: SensorId | None = None
    role: str | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> _SensorRule:
        if (self.sensor is None) == (self.role is None):
            raise ValueError("give either `sensor` or `role` (with the rule's equipment)")
        return self


class ThresholdRule(_SensorRule):
    """Fires when the value stays beyond `above`/`below` for `for_min`; clears at `clear`."""

    kind: Literal["threshold"]
    above: float | None = None
    below: float | None = None
    clear: float
    for_min: Minutes = 0.0

    @model_validator(mode="after")
    def _hysteresis(self) -> ThresholdRule:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of `above` or `below`")
        if self.above is not None and not self.clear < self.above:
            raise ValueError(f"`clear` ({self.clear}) must be below `above` ({self.above})")
        if self.below is not None and not self.clear > self.below:
            raise ValueError(f"`clear` ({self.clear}) must be above `below` ({self.below})")
        return self


class RateRule(_SensorRule):
    """Fires when the value changes faster than `rise_per_min`/`fall_per_min` over a window.

    Slow processes (stored hay warming by degrees a day) may be written `rise_per_day` /
    `fall_per_day`: the same rule, per minute = per day / 1440."""

    kind: Literal["rate"]
    rise_per_min: float | None = Field(default=None, gt=0)
    fall_per_min: float | None = Field(default=None, gt=0)
    window_min: Minutes = Field(default=5.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _per_day(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for direction in ("rise", "fall"):
            per_day = data.pop(f"{direction}_per_day", None)
            if per_day is None:
                continue
            if data.get(f"{direction}_per_min") is not None:
                raise ValueError(f"give `{direction}_per_min` or `{direction}_per_day`, "
                                 "not both")
            if not isinstance(per_day, int | float) or isinstance(per_day, bool):
                raise ValueError(f"`{direction}_per_day` must be a number")
            data[f"{direction}_per_min"] = per_day / 1440
        return data

    @model_validator(mode="after")
    def _direction(self) -> RateRule:
        if self.rise_per_min is None and self.fall_per_min is None:
            raise ValueError("give `rise_per_min`, `fall_per_min` or both")
        return self


class StateRule(_SensorRule):
    """Fires when a state (door_open = 1) is held longer than `for_min`."""

    kind: Literal["state"]
    value: float = 1.0
    for_min: Minutes = 0.0


class NoDataRule(_Rule):
    """Fires when a sensor, or a whole gateway (offline status), is silent for `after_min`."""

    kind: Literal["no_data"]
    sensor: SensorId | None = None
    role: str | None = None
    gateway: Ident | None = None
    after_min: Minutes = Field(gt=0)

    @model_validator(mode="after")
    def _one_subject(self) -> NoDataRule:
        if sum(x is not None for x in (self.sensor, self.role, self.gateway)) != 1:
            raise ValueError("give exactly one of `sensor`, `role` or `gateway`")
        return self


Rule = Annotated[ThresholdRule | RateRule | StateRule | NoDataRule, Field(discriminator="kind")]


class SensorInfo(_Model):
    gateway: str
    equipment: str
    role: str
    unit: str
    location: str = ""  # where the sensor is (a probe in a stack): named in the SMS


class GrafanaRouting(_Model):
    """Where Grafana's alert webhooks go when their labels name no `contacts`."""

    notify: Notify
    severity: Severity = "warning"


class GammuChannel(_Model):
    type: Literal["gammu"]
    smsd_config: str  # gammu-smsd's configuration file, relative to this file


class OvhChannel(_Model):
    type: Literal["ovh"]
    service_name: str
    application_key: str
    application_secret: str
    consumer_key: str
    sender: str | None = None
    endpoint: str = "ovh-eu"


class TwilioChannel(_Model):
    type: Literal["twilio"]
    account_sid: str
    auth_token: str
    from_number: Phone


class FreeMobileChannel(_Model):
    type: Literal["free_mobile"]
    user: str
    password: str
    phone: Phone  # Free Mobile sends only to the account holder's own line


class WebhookChannel(_Model):
    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    token: str | None = None


Channel = Annotated[GammuChannel | OvhChannel | TwilioChannel | FreeMobileChannel | WebhookChannel,
                    Field(discriminator="type")]


class AlertConfig(_Model):
    site: Ident
    timezone: str = "Europe/Paris"
    site_configs: tuple[str, ...] = ()  # gateway configurations, relative to this file
    contacts: tuple[Contact, ...] = Field(min_length=1)
    defaults: Notify
    rate_limit: RateLimit = RateLimit()
    max_reading_age_min: Minutes = Field(default=10.0, gt=0)
    # Gateways that run edge alerting (`dynamo alerts edge`): when one reconnects with a
    # backlog, its alerts fire unannounced here for `edge_handover_s`, time for its edge
    # alerting to report the alerts it sent meanwhile (docs/alerting.md, "At the edge").
    edge_gateways: tuple[Ident, ...] = ()
    edge_handover_s: float = Field(default=30.0, ge=0, le=600)
    grafana: GrafanaRouting | None = None
    # Tried in order for every SMS; secrets come from the environment as ${NAME}.
    notifiers: tuple[Channel, ...] = ()
    rules: tuple[Rule, ...] = ()
    # Filled by the loader from `site_configs`, not written in the file.
    sensors: dict[str, SensorInfo] = Field(default_factory=dict, exclude=True)
    equipment_names: dict[str, str] = Field(default_factory=dict, exclude=True)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def contact(self, contact_id: str) -> Contact:
        return next(c for c in self.contacts if c.id == contact_id)

    def contact_by_phone(self, phone: str) -> Contact | None:
        return next((c for c in self.contacts if c.phone == phone), None)

    def notify_of(self, rule: ThresholdRule | RateRule | StateRule | NoDataRule) -> Notify:
        return rule.notify or self.defaults

    def subjects(self, rule: ThresholdRule | RateRule | StateRule | NoDataRule) -> tuple[str, ...]:
        """The sensor ids (or the gateway id) a rule watches."""
        if isinstance(rule, NoDataRule) and rule.gateway is not None:
            return (rule.gateway,)
        if rule.sensor is not None:
            return (rule.sensor,)
        return tuple(sorted(s for s, info in self.sensors.items()
                            if info.role == rule.role and info.equipment == rule.equipment))


def load_alert_config(file: str | Path) -> AlertConfig:
    """Load a site's alert rules and check them against its contacts and gateway configurations.

    Every problem is reported at once as a `ConfigError` with file, line and path.
    """
    path = Path(file)
    doc = YamlDocument(path)
    config = doc.validate(AlertConfig)
    sensors: dict[str, SensorInfo] = {}
    names: dict[str, str] = {}
    gateways: set[str] = set()
    issues: list[ConfigIssue] = []
    for i, relative in enumerate(config.site_configs):
        site_file = (path.parent / relative).resolve()
        if not site_file.is_file():
            issues.append(doc.issue(("site_configs", i), f"no such file: {site_file}"))
            continue
        gateway = load_gateway_config(site_file)  # its own ConfigError names its own file
        gateways.add(gateway.gateway)
        for equipment in gateway.equipment:
            names[equipment.id] = equipment.name or equipment.id
        for device in gateway.devices:
            for sensor in device.sensors:
                sensors[sensor.id] = SensorInfo(gateway=gateway.gateway,
                                                equipment=device.equipment, role=sensor.role,
                                                unit=_unit_of(gateway, device, sensor),
                                                location=sensor.location)
    config = config.model_copy(update={"sensors": sensors, "equipment_names": names})
    issues.extend(_cross_check(config, doc, gateways))
    if issues:
        raise ConfigError(issues)
    return config


def _unit_of(gateway: GatewayConfig, device: Device, sensor: Sensor) -> str:
    if sensor.unit is not None:
        return sensor.unit
    return str(getattr(gateway.point_of(device, sensor), "unit", "") or "")


def _cross_check(config: AlertConfig, doc: YamlDocument, gateways: set[str]) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    contact_ids = [c.id for c in config.contacts]
    for i, contact_id in enumerate(contact_ids):
        if contact_ids.index(contact_id) != i:
            issues.append(doc.issue(("contacts", i, "id"), f"contact {contact_id} defined twice"))
    phones = [c.phone for c in config.contacts]
    for i, phone in enumerate(phones):
        if phones.index(phone) != i:
            # A reply is matched to its sender by number: two contacts cannot share one.
            issues.append(doc.issue(("contacts", i, "phone"), f"number {phone} used twice"))

    def check_notify(notify: Notify | None, where: tuple[int | str, ...]) -> None:
        for j, contact_id in enumerate(notify.contacts if notify else ()):
            if contact_id not in contact_ids:
                issues.append(doc.issue((*where, "contacts", j),
                                        f"unknown contact {contact_id!r}; "
                                        f"declared: {', '.join(contact_ids)}"))

    for n, channel in enumerate(config.notifiers):
        if isinstance(channel, GammuChannel) and \
                not (doc.file.parent / channel.smsd_config).is_file():
            issues.append(doc.issue(("notifiers", n, "smsd_config"),
                                    f"no such file: {doc.file.parent / channel.smsd_config}"))
    check_notify(config.defaults, ("defaults",))
    check_notify(config.grafana.notify if config.grafana else None, ("grafana", "notify"))
    seen: set[str] = set()
    known_sensors = bool(config.site_configs)
    for r, rule in enumerate(config.rules):
        here: tuple[int | str, ...] = ("rules", r)
        if rule.id in seen:
            issues.append(doc.issue((*here, "id"), f"rule {rule.id} defined twice"))
        seen.add(rule.id)
        check_notify(rule.notify, (*here, "notify"))
        if known_sensors and rule.equipment not in config.equipment_names:
            issues.append(doc.issue((*here, "equipment"),
                                    f"unknown equipment {rule.equipment!r}; declared: "
                                    f"{', '.join(sorted(config.equipment_names))}"))
        if rule.sensor is not None and known_sensors:
            info = config.sensors.get(rule.sensor)
            if info is None:
                issues.append(doc.issue((*here, "sensor"), f"unknown sensor {rule.sensor!r} "
                                        "in the site configurations"))
            elif info.equipment != rule.equipment:
                issues.append(doc.issue((*here, "sensor"), f"sensor {rule.sensor} belongs to "
                                        f"{info.equipment}, not {rule.equipment}"))
        if rule.role is not None:
            if rule.role not in ROLES:
                issues.append(doc.issue((*here, "role"),
                                        f"unknown role {rule.role!r}; see docs/roles.md"))
            elif not known_sensors:
                issues.append(doc.issue((*here, "role"), "a rule by role needs `site_configs` "
                                        "to find the sensors"))
            elif not config.subjects(rule):
                issues.append(doc.issue((*here, "role"), f"no sensor with role {rule.role} on "
                                        f"equipment {rule.equipment}"))
        if (isinstance(rule, NoDataRule) and rule.gateway is not None and known_sensors
                and rule.gateway not in gateways):
            issues.append(doc.issue((*here, "gateway"), f"unknown gateway {rule.gateway!r}; "
                                    f"declared: {', '.join(sorted(gateways))}"))
    return issues
