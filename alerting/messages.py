"""SMS texts, French for operators with English available. Placeholders are the fields of
`MessageFields`; a rule's own `message` template may use the same ones."""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

FIELDS = ("id", "name", "equipment", "reading", "value", "unit", "time", "severity", "minutes",
          "by", "count", "max", "per", "advice")

# Display symbols only: values are never converted here (units.py owns conversions).
_UNIT_SYMBOLS = {"degC": "°C", "percent": "%", "m**3": "m³", "m**3/h": "m³/h", "W/m**2": "W/m²"}
_SEVERITY = {"fr": {"info": "Info", "warning": "Alerte", "critical": "ALERTE CRITIQUE"},
             "en": {"info": "Info", "warning": "Alert", "critical": "CRITICAL ALERT"}}

TEMPLATES: dict[str, dict[str, str]] = {
    "fr": {
        "firing": "[DYNAMO] {severity} n°{id} – {equipment} : {name}. {reading} "
                  "le {time}. {advice} Répondez OK {id} pour acquitter.",
        "repeat": "[DYNAMO] Rappel n°{id} – {equipment} : {name}, toujours active "
                  "({reading} le {time}). {advice} Répondez OK {id} pour acquitter.",
        "escalation": "[DYNAMO] {severity} n°{id} non acquittée depuis {minutes} min – "
                      "{equipment} : {name}. {reading} le {time}. {advice} "
                      "Répondez OK {id} pour acquitter.",
        "resolved": "[DYNAMO] Fin d'alerte n°{id} – {equipment} : {name}. "
                    "{reading} le {time}.",
        "ack": "[DYNAMO] Alerte n°{id} ({equipment} : {name}) acquittée par {by} le {time}.",
        "summary": "[DYNAMO] {count} SMS non envoyés à ce numéro (limite : {max} par {per} min). "
                   "Consultez le tableau de bord des alarmes.",
        "reading": "Valeur {value} {unit}",
        "no_value": "Aucune donnée",
    },
    "en": {
        "firing": "[DYNAMO] {severity} #{id} – {equipment}: {name}. {reading} "
                  "at {time}. {advice} Reply OK {id} to acknowledge.",
        "repeat": "[DYNAMO] Reminder #{id} – {equipment}: {name}, still active "
                  "({reading} at {time}). {advice} Reply OK {id} to acknowledge.",
        "escalation": "[DYNAMO] {severity} #{id} unacknowledged for {minutes} min – "
                      "{equipment}: {name}. {reading} at {time}. {advice} "
                      "Reply OK {id} to acknowledge.",
        "resolved": "[DYNAMO] Resolved #{id} – {equipment}: {name}. "
                    "{reading} at {time}.",
        "ack": "[DYNAMO] Alert #{id} ({equipment}: {name}) acknowledged by {by} at {time}.",
        "summary": "[DYNAMO] {count} SMS not sent to this number (limit: {max} per {per} min). "
                   "See the alarms dashboard.",
        "reading": "Value {value} {unit}",
        "no_value": "No data",
    },
}


def template_fields(template: str) -> set[str]:
    """The placeholders a template uses; raises ValueError on a malformed template."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


@dataclass(frozen=True, slots=True)
class MessageFields:
    id: int
    name: str
    equipment: str
    value: float | None
    unit: str
    at_ms: int
    severity: str
    minutes: int = 0
    by: str = ""
    count: int = 0
    max: int = 0
    per: int = 0
    advice: str = ""  # what to do, in the contact's language (a rule's `advice`)


def render(*, kind: str, language: str, fields: MessageFields, timezone: str,
           template: str | None = None) -> str:
    """The text of one SMS; `template` (a rule's own) replaces the default firing text."""
    words = TEMPLATES[language]
    when = datetime.fromtimestamp(fields.at_ms / 1000, tz=ZoneInfo(timezone))
    value = "" if fields.value is None else _number(fields.value, language)
    unit = "" if fields.value is None else _UNIT_SYMBOLS.get(fields.unit, fields.unit)
    reading = (words["no_value"] if fields.value is None
               else words["reading"].format(value=value, unit=unit))
    values = {
        "id": fields.id, "name": fields.name, "equipment": fields.equipment, "value": value,
        "unit": unit, "reading": reading,
        "time": when.strftime("%d/%m/%Y à %H:%M" if language == "fr" else "%Y-%m-%d %H:%M"),
        "severity": _SEVERITY[language].get(fields.severity, fields.severity),
        "minutes": fields.minutes, "by": fields.by, "count": fields.count, "max": fields.max,
        "per": fields.per, "advice": fields.advice.strip(),
    }
    text = (template if template and kind == "firing" else words[kind]).format(**values)
    return " ".join(text.split())  # an empty unit leaves a double space


def _number(value: float, language: str) -> str:
    text = f"{value:.1f}" if abs(value) < 1000 else f"{value:.0f}"
    text = text.removesuffix(".0")
    return text.replace(".", ",") if language == "fr" else text
