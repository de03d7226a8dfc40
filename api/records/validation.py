"""The rules of a production record, and what an operator reads when one is broken.

The rules live in the records' pydantic input models (`api.schemas`: the api answers 422 with
them, the console shows them next to the field); a rule that involves two fields raises
`rule(...)` from the validator of the field the operator must fix, so the error points there.
`field_errors` turns a `pydantic.ValidationError` into one message per wrong field, in French
or English, in the operator's words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

Lang = Literal["fr", "en"]
FORM = "__form__"  # the key of an error that belongs to no one field


@dataclass(frozen=True, slots=True)
class Message:
    """`api`: the technical English of the 422 body; `fr`, `en`: what an operator reads.
    Each may use the error's context, e.g. {limit}."""

    api: str
    fr: str
    en: str


# Rules of our own (several fields, or a table outside the record).
RULES: dict[str, Message] = {
    "naive_datetime": Message(
        "{field} needs a time zone, e.g. 2026-06-01T08:00:00+02:00",
        "La date doit préciser son fuseau horaire", "The date needs a time zone"),
    "datetime_range": Message(
        "{field} must lie between 1970-01-02 and 2200-01-01",
        "La date doit être comprise entre 1970 et 2200",
        "The date must lie between 1970 and 2200"),
    "end_before_start": Message(
        "{field} must be after {start}", "La fin doit être postérieure au début",
        "The end must be after the start"),
    "moisture_order": Message(
        "moisture_out_pct cannot exceed moisture_in_pct",
        "L'humidité de sortie doit être inférieure ou égale à l'humidité d'entrée",
        "The moisture out must be at most the moisture in"),
    "mass_order": Message(
        "mass_out_kg cannot exceed mass_in_kg",
        "La masse de sortie doit être inférieure ou égale à la masse d'entrée",
        "The mass out must be at most the mass in"),
    "unknown_refrigerant": Message(
        "no GWP known for refrigerant '{refrigerant}'",
        "Fluide inconnu de la table des PRG : {refrigerant}",
        "Refrigerant not in the GWP table: {refrigerant}"),
    "unknown_factor": Message(
        "{detail}", "Facteur d'émission inconnu à cette date : {factor}",
        "No such emission factor at that date: {factor}"),
    "factor_unit": Message(
        "factor {factor} is per {unit}, {needed}",
        "Ce facteur est exprimé par {unit} ; il en faut un par kg",
        "This factor is per {unit}; one per kg is needed"),
    "unknown_reference": Message(
        "no {kind} record {id} for {site}/{equipment}",
        "N° {id} inconnu pour cet équipement", "No record {id} for this equipment"),
    "carrier_for_kind": Message(
        "carrier '{carrier}' cannot be a {kind}; one of: {allowed}",
        "Énergie impossible pour ce type de saisie : choisir parmi {allowed}",
        "Not a carrier for this kind of entry: one of {allowed}"),
    "unit_for_carrier": Message(
        "{carrier} is counted in {allowed}, not '{unit}'",
        "Unité impossible pour cette énergie : {allowed}",
        "Wrong unit for this carrier: {allowed}"),
    "required_for_kind": Message(
        "{field} is required for a {kind}", "Champ obligatoire pour ce type de saisie",
        "Required for this kind of entry"),
    "not_allowed_for_kind": Message(
        "{field} does not belong to a {kind}", "Ce champ ne concerne pas ce type de saisie",
        "This field does not belong to this kind of entry"),
    "activity_unit": Message(
        "activity_unit: {detail}", "Unité inconnue", "Unknown unit"),
    "voided": Message(
        "{kind} record {id} is voided: it cannot be edited",
        "Cet enregistrement est annulé : il ne peut plus être modifié",
        "This record is voided: it can no longer be edited"),
}


def rule(code: str, **context: Any) -> PydanticCustomError:
    """The error of one of `RULES`, raised from a pydantic validator (its technical message
    goes to the api's 422, its code lets `field_errors` translate it)."""
    return PydanticCustomError(code, RULES[code].api, context)


def invalid(title: str, errors: Mapping[str, PydanticCustomError],
            values: Mapping[str, Any]) -> ValidationError:
    """A ValidationError of rules checked outside a model (tables the model cannot see: the
    GWP table, the factors, the equipment's other records), one per field."""
    details = [InitErrorDetails(type=error, loc=(field,), input=values.get(field))
               for field, error in errors.items()]
    return ValidationError.from_exception_data(title, details)


# What a field is about: the words used for pydantic's own range errors on it.
_TOPIC = {
    "moisture_in_pct": "moisture", "moisture_out_pct": "moisture",
    "mass_in_kg": "mass", "mass_out_kg": "mass", "mass_kg": "mass_positive",
    "units": "count", "quantity": "quantity", "index_value": "quantity",
    "activity_per_output": "quantity_positive",
}
_RANGE = {
    "moisture": ("L'humidité doit être comprise entre 0 et 100 %",
                 "Moisture must lie between 0 and 100 %"),
    "mass": ("La masse doit être positive ou nulle", "The mass must be zero or more"),
    "mass_positive": ("La masse doit être strictement positive",
                      "The mass must be more than zero"),
    "count": ("Le nombre d'unités doit être positif ou nul",
              "The number of units must be zero or more"),
    "quantity": ("La quantité doit être positive ou nulle", "The quantity must be zero or more"),
    "quantity_positive": ("La valeur doit être strictement positive",
                          "The value must be more than zero"),
}
_LOW = {"greater_than_equal", "greater_than"}
_HIGH = {"less_than_equal", "less_than"}
_PATTERN = {
    "refrigerant": ("Nom de fluide attendu, par exemple R290",
                    "A refrigerant name is expected, e.g. R290"),
}
_BUILTIN: dict[str, tuple[str, str]] = {
    "missing": ("Champ obligatoire", "Required"),
    "string_too_short": ("Champ obligatoire", "Required"),
    "string_too_long": ("Texte trop long (au plus {max_length} caractères)",
                        "Too long (at most {max_length} characters)"),
    "string_pattern_mismatch": ("Identifiant attendu : minuscules, chiffres, « - » et « _ »",
                                "An identifier is expected: lower case, digits, - and _"),
    "extra_forbidden": ("Champ inconnu", "Unknown field"),
    "literal_error": ("Choix invalide : {expected}", "Not one of: {expected}"),
    "enum": ("Choix invalide : {expected}", "Not one of: {expected}"),
    "greater_than_equal": ("La valeur doit être supérieure ou égale à {ge}",
                           "The value must be at least {ge}"),
    "greater_than": ("La valeur doit être strictement supérieure à {gt}",
                     "The value must be more than {gt}"),
    "less_than_equal": ("La valeur doit être inférieure ou égale à {le}",
                        "The value must be at most {le}"),
    "less_than": ("La valeur doit être strictement inférieure à {lt}",
                  "The value must be less than {lt}"),
}
_NUMBER = {"float_parsing", "float_type", "int_parsing", "int_type", "int_from_float",
           "finite_number"}
_MOMENT = {"datetime_parsing", "datetime_type", "datetime_from_date_parsing",
           "datetime_object_invalid"}


def _number(value: Any, lang: Lang) -> str:
    if not isinstance(value, int | float):
        return str(value)
    text = f"{value:,.10g}" if abs(value) < 1e15 else f"{value:g}"
    return text.replace(",", "\u202f").replace(".", ",") if lang == "fr" else text


def message(error_type: str, field: str, context: Mapping[str, Any], lang: Lang) -> str:
    """One error in the operator's words."""
    pick = 0 if lang == "fr" else 1
    ctx = {key: _number(value, lang) for key, value in context.items()}
    if error_type in RULES:
        text = RULES[error_type].fr if lang == "fr" else RULES[error_type].en
        return text.format(**ctx)
    topic = _TOPIC.get(field)
    if topic is not None and error_type in _LOW | _HIGH:
        return _RANGE[topic][pick]
    if error_type == "string_pattern_mismatch" and field in _PATTERN:
        return _PATTERN[field][pick]
    if error_type in _NUMBER:
        return ("Nombre attendu", "A number is expected")[pick]
    if error_type in _MOMENT:
        return ("Date et heure attendues", "A date and time are expected")[pick]
    if error_type in _BUILTIN:
        try:
            return _BUILTIN[error_type][pick].format(**ctx)
        except (KeyError, IndexError):
            pass
    return ("Valeur invalide", "Invalid value")[pick]


def field_errors(exc: ValidationError, lang: Lang = "fr") -> dict[str, str]:
    """Each wrong field → one message (the first error found on it); an error of the whole
    record goes under `FORM`."""
    found: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        names = [part for part in error["loc"] if isinstance(part, str) and part != "body"]
        field = names[0] if names else FORM
        if field not in found:
            found[field] = message(error["type"], field, error.get("ctx") or {}, lang)
    return found
