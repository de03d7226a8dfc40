"""The report's dryer heat section: the heat the drying air took up, the metered heat, and the
ambient share nothing meters (api/accounting/airside.py), with the metered energy per latent
heat of the water evaporated. The words are this section's own, in French and English."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from api.reports.language import Lang, number

if TYPE_CHECKING:
    from api.reports.content import Report
    from api.schemas import DryerOut

_WORDS: dict[str, tuple[str, str]] = {
    "title": ("Chaleur du séchoir : air, compteurs et air ambiant",
              "Dryer heat: air, meters and ambient air"),
    "intro": (
        "L'eau évaporée du foin part avec l'air de séchage ; la chaleur de cette évaporation "
        "(chaleur latente) est comptée de trois façons. (1) La chaleur prise par l'air : "
        "calculée à partir des températures et humidités de l'air à l'entrée et à la sortie "
        "du foin et du débit d'air, par la psychrométrie de l'ASHRAE (rapports de mélange, "
        "enthalpies de l'air humide). (2) La chaleur comptée : chaleur solaire, électricité "
        "et combustible mesurés par les compteurs. (3) La part de l'air ambiant = (1) − (2) : "
        "la chaleur de l'air extérieur lui-même, qu'aucun compteur ne voit. Un séchoir en "
        "grange tire l'essentiel de sa chaleur de l'air ambiant : un rapport « énergie "
        "comptée / chaleur latente de l'eau évaporée » inférieur à 1 est normal (environ "
        "0,34 pour un séchoir en grange) et ne dépasse aucune limite physique.",
        "The water evaporated from the hay leaves with the drying air; the heat of that "
        "evaporation (latent heat) is counted three ways. (1) The heat taken up by the air: "
        "from the air's temperature and humidity entering and leaving the hay and the "
        "airflow, with ASHRAE psychrometrics (humidity ratios, moist-air enthalpies). (2) The "
        "metered heat: solar heat, electricity and fuel the meters measure. (3) The ambient "
        "share = (1) − (2): the outdoor air's own heat, which no meter sees. A barn dryer takes "
        "most of its heat from the ambient air: a \"metered energy / latent heat of the water "
        "evaporated\" ratio below 1 is normal (about 0.34 for a barn dryer) and beats no "
        "physical limit."),
    "machine": ("Machine", "Machine"),
    "ratio": ("Énergie comptée / chaleur latente de l'eau évaporée",
              "Metered energy / latent heat of the water evaporated"),
    "water_batches": ("Eau évaporée des lots (kg)", "Water evaporated from the batches (kg)"),
    "water_air": ("Eau prise par l'air (kg)", "Water taken up by the air (kg)"),
    "gap": ("Écart air / lots (tolérance ± {tol} %)", "Air / batches gap (tolerance ± {tol} %)"),
    "heat_air": ("(1) Chaleur prise par l'air (kWh)", "(1) Heat taken up by the air (kWh)"),
    "metered": ("(2) Chaleur comptée (kWh)", "(2) Metered heat (kWh)"),
    "ambient": ("(3) Part de l'air ambiant (kWh)", "(3) Ambient share (kWh)"),
    "ambient_pct": ("Part de l'air ambiant (%)", "Ambient share (%)"),
    "no_air": ("le séchoir ne mesure pas son air (températures, humidités, débit) sur la "
               "période : pas de bilan côté air",
               "the dryer does not measure its air (temperatures, humidities, airflow) over "
               "the period: no air-side balance"),
}


def _say(key: str, lang: Lang) -> str:
    return _WORDS[key][0 if lang == "fr" else 1]


def _cell(figure: str, value: float | None, digits: int, lang: Lang) -> str:
    return (f'<td class="n" data-figure="{escape(figure)}">'
            f"{number(value, digits=digits, lang=lang)}</td>")


def _row(eq: str, name: str, dryer: DryerOut, lang: Lang) -> list[str]:
    air = dryer.air_side
    cells = [f"<td>{escape(name)}</td>",
             _cell(f"{eq}.dryer.metered_energy_per_latent_heat",
                   dryer.metered_energy_per_latent_heat, 2, lang),
             _cell(f"{eq}.dryer.water_evaporated_kg", dryer.water_evaporated_kg, 0, lang)]
    if air is None:
        return [*cells, f'<td colspan="6" class="note">{_say("no_air", lang)}</td>']
    gap = None if air.water_balance_gap is None else 100 * air.water_balance_gap
    share = None if air.ambient_share is None else 100 * air.ambient_share
    return [*cells,
            _cell(f"{eq}.dryer.air_side.water_taken_up_kg", air.water_taken_up_kg, 0, lang),
            _cell(f"{eq}.dryer.air_side.water_balance_gap", gap, 1, lang),
            _cell(f"{eq}.dryer.air_side.heat_taken_up_kwh", air.heat_taken_up_kwh, 0, lang),
            _cell(f"{eq}.dryer.air_side.metered_heat_kwh", air.metered_heat_kwh, 0, lang),
            _cell(f"{eq}.dryer.air_side.ambient_heat_kwh", air.ambient_heat_kwh, 0, lang),
            _cell(f"{eq}.dryer.air_side.ambient_share", share, 0, lang)]


def dryer_heat_section(report: Report, lang: Lang, machine_name: str) -> str:
    """One row per dryer; '' when the site has none. `machine_name` is a format string with
    `{name}` (the report's own way of naming a machine)."""
    rows = []
    tolerance = 10.0
    for m in report.machines:
        dryer = m.indicators.dryer
        if dryer is None:
            continue
        if dryer.air_side is not None:
            tolerance = 100 * dryer.air_side.water_balance_tolerance
        name = machine_name.format(name=m.equipment.name)
        rows.append("<tr>" + "".join(_row(m.equipment.id, name, dryer, lang)) + "</tr>")
    if not rows:
        return ""
    keys = ("machine", "ratio", "water_batches", "water_air", "gap", "heat_air", "metered",
            "ambient", "ambient_pct")
    head = "".join(f"<th>{escape(_say(k, lang).format(tol=number(tolerance, digits=0, lang=lang)))}"
                   "</th>" for k in keys)
    return (f'<h2 id="dryer-heat">{_say("title", lang)}</h2><p>{_say("intro", lang)}</p>'
            f'<table class="dryer-heat"><tr>{head}</tr>{"".join(rows)}</table>')
