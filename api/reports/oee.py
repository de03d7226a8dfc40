"""The report's OEE availability section: for each line with a shift calendar, its time
against the planned time (ISO 22400-2:2014 time model) and the availability it gives, or why
there is none. The words are this section's own, in French and English."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from api.reports.language import Lang, number

if TYPE_CHECKING:
    from api.reports.content import Report

_WORDS: dict[str, tuple[str, str]] = {
    "title": ("Disponibilité sur temps de production planifié",
              "Availability on planned production time"),
    "intro": ("Disponibilité (TRS) = temps de marche pendant le temps requis ÷ temps requis "
              "(temps planifié par le calendrier des postes, moins les arrêts planifiés ; "
              "ISO 22400-2:2014, « Availability » = APT / PBT). Les arrêts non planifiés et "
              "les pannes pendant le temps requis sont de l'indisponibilité ; la marche hors "
              "temps planifié est donnée à part ; le temps requis sans relevé n'entre pas "
              "dans le rapport.",
              "Availability (OEE) = run time during planned busy time ÷ planned busy time "
              "(the shift calendar's planned time less planned stops; ISO 22400-2:2014, "
              "\"Availability\" = APT / PBT). Unplanned stops and faults during it are "
              "downtime; running outside planned time is shown apart; planned time without "
              "readings is left out of the ratio."),
    "machine": ("Machine", "Machine"),
    "calendar": ("Calendrier", "Calendar"),
    "planned_operation_h": ("Temps d'ouverture planifié (h)", "Planned operation (h)"),
    "planned_downtime_h": ("Arrêts planifiés (h)", "Planned stops (h)"),
    "planned_busy_h": ("Temps requis (h)", "Planned busy time (h)"),
    "run_h": ("Marche (h)", "Run (h)"),
    "unplanned_stop_h": ("Arrêts non planifiés (h)", "Unplanned stops (h)"),
    "fault_h": ("Pannes (h)", "Faults (h)"),
    "unknown_h": ("Sans relevé (h)", "No reading (h)"),
    "running_outside_planned_h": ("Marche hors temps planifié (h)",
                                  "Running outside planned time (h)"),
    "availability": ("Disponibilité", "Availability"),
    "configuration": ("configuration du site", "site configuration"),
    "api": ("défini par un administrateur, version {v}", "set by an admin, version {v}"),
    "no_calendar": ("pas de calendrier des postes", "no shift calendar"),
}
_HOURS = ("planned_operation_h", "planned_downtime_h", "planned_busy_h", "run_h",
          "unplanned_stop_h", "fault_h", "unknown_h", "running_outside_planned_h")


def _say(key: str, lang: Lang) -> str:
    return _WORDS[key][0 if lang == "fr" else 1]


def oee_section(report: Report, lang: Lang, machine_name: str) -> str:
    """One row per packaging line; '' when the site has none. `machine_name` is a format
    string with `{name}` and `{kind}` (the report's own way of naming a machine)."""
    rows = []
    for m in report.machines:
        packaging = m.indicators.packaging
        if packaging is None:
            continue
        eq = m.equipment.id
        name = escape(machine_name.format(name=m.equipment.name, kind=m.equipment.kind.value))
        planned = packaging.planned_time
        if planned is None:
            rows.append(f"<tr><td>{name}</td><td>{_say('no_calendar', lang)}</td>"
                        + '<td class="n">—</td>' * (len(_HOURS) + 1) + "</tr>")
            continue
        source = (_say("api", lang).format(v=planned.calendar_version)
                  if planned.calendar == "api" else _say("configuration", lang))
        cells = "".join(
            f'<td class="n" data-figure="{eq}.packaging.planned_time.{key}">'
            f"{number(getattr(planned, key), digits=1, lang=lang)}</td>" for key in _HOURS)
        value = packaging.oee_availability
        shown = "—" if value is None else f"{number(100 * value, digits=1, lang=lang)} %"
        why = (f'<br><span class="note">{escape(packaging.oee_availability_reason)}</span>'
               if packaging.oee_availability_reason else "")
        rows.append(f"<tr><td>{name}</td><td>{escape(source)}</td>{cells}"
                    f'<td class="n" data-figure="{eq}.packaging.oee_availability">{shown}{why}'
                    "</td></tr>")
    if not rows:
        return ""
    head = "".join(f"<th>{_say(k, lang)}</th>" for k in ("machine", "calendar", *_HOURS,
                                                         "availability"))
    return (f'<h2 id="oee">{_say("title", lang)}</h2><p>{_say("intro", lang)}</p>'
            f'<table class="oee"><tr>{head}</tr>{"".join(rows)}</table>')
