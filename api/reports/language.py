"""The report's words in French (the operators' and evaluators' language) and English, and
numbers written the way each language writes them."""

from __future__ import annotations

from typing import Literal

Lang = Literal["fr", "en"]

# French groups thousands with a narrow no-break space and uses a decimal comma.
_NNBSP = "\u202f"

TEXT: dict[str, dict[Lang, str]] = {
    "title": {"fr": "Rapport d'évaluation", "en": "Evaluation report"},
    "site": {"fr": "Site", "en": "Site"},
    "period": {"fr": "Période", "en": "Period"},
    "period_day": {"fr": "jour", "en": "day"},
    "period_week": {"fr": "semaine", "en": "week"},
    "period_month": {"fr": "mois", "en": "month"},
    "period_year": {"fr": "année", "en": "year"},
    "generated": {"fr": "Généré le", "en": "Generated on"},
    "summary": {"fr": "Synthèse énergie et gaz à effet de serre",
                "en": "Energy and greenhouse gas summary"},
    "machine": {"fr": "Machine", "en": "Machine"},
    "energy_used": {"fr": "Énergie consommée (kWh)", "en": "Energy used (kWh)"},
    "energy_purchased": {"fr": "dont achetée (kWh)", "en": "of which purchased (kWh)"},
    "scope1": {"fr": "Scope 1 (kgCO2e)", "en": "Scope 1 (kgCO2e)"},
    "scope2": {"fr": "Scope 2 (kgCO2e)", "en": "Scope 2 (kgCO2e)"},
    "total": {"fr": "Total scopes 1+2 (kgCO2e)", "en": "Total scopes 1+2 (kgCO2e)"},
    "avoided": {"fr": "Émissions évitées (kgCO2e)", "en": "Avoided emissions (kgCO2e)"},
    "avoided_note": {
        "fr": "Les émissions évitées sont calculées contre un scénario de référence nommé et "
              "ne sont jamais déduites des émissions.",
        "en": "Avoided emissions are computed against a named baseline and never netted "
              "against emissions."},
    "baseline": {"fr": "référence", "en": "baseline"},
    "none": {"fr": "—", "en": "—"},
    "charts": {"fr": "Graphiques", "en": "Charts"},
    "chart_energy": {"fr": "Énergie par source", "en": "Energy by source"},
    "chart_batches": {"fr": "Énergie spécifique par lot", "en": "Specific energy per batch"},
    "chart_band": {"fr": "Congélateur : part du temps dans la plage de température",
                   "en": "Freezer: share of time within the temperature band"},
    "chart_materials": {"fr": "Empreinte des matériaux d'emballage",
                        "en": "Packaging material footprint"},
    "no_data": {"fr": "aucune donnée sur la période", "en": "no data in the period"},
    "per_day": {"fr": "par jour", "en": "per day"},
    "per_month": {"fr": "par mois", "en": "per month"},
    "band_share": {"fr": "% du temps dans la plage", "en": "% of time in band"},
    "batch": {"fr": "lot", "en": "batch"},
    "method": {"fr": "Méthode et sources des facteurs", "en": "Method and factor sources"},
    "method_text": {
        "fr": "Énergie : différence des compteurs cumulés (remises à zéro traitées), sinon "
              "intégrale de la puissance ; au-delà de 31 jours, agrégats horaires. GES = "
              "activité × facteur d'émission ; scope 2 en méthode « location-based » (mix "
              "moyen de consommation ADEME) ; scope 1 : combustibles et fuites de "
              "fluide frigorigène (PRG à 100 ans, rapport {gwp} du GIEC). Les lots comptent "
              "dans la période où ils se terminent.",
        "en": "Energy: difference of cumulative counters (resets handled), otherwise the "
              "integral of power; beyond 31 days, hourly rollups. GHG = activity × emission "
              "factor; scope 2 location-based (ADEME consumption mix); scope 1: fuels and "
              "refrigerant leaks (GWP-100, IPCC {gwp}). Batches count in the period they "
              "end in."},
    "factor_id": {"fr": "Facteur", "en": "Factor"},
    "version": {"fr": "Version", "en": "Version"},
    "value": {"fr": "Valeur", "en": "Value"},
    "unit": {"fr": "Unité", "en": "Unit"},
    "source": {"fr": "Source", "en": "Source"},
    "coverage": {"fr": "Couverture des données", "en": "Data coverage"},
    "energy_source": {"fr": "Source d'énergie", "en": "Energy source"},
    "kwh": {"fr": "kWh", "en": "kWh"},
    "how": {"fr": "Méthode", "en": "Method"},
    "readings": {"fr": "Relevés", "en": "Readings"},
    "resets": {"fr": "Remises à zéro", "en": "Resets"},
    "covered": {"fr": "Couverture (%)", "en": "Coverage (%)"},
    "evidence": {"fr": "Données", "en": "Evidence"},
    "missing": {"fr": "Capteurs sans relevé exploitable", "en": "Sensors with no usable reading"},
    "notes": {"fr": "Remarques", "en": "Notes"},
    "counter_difference": {"fr": "différence de compteur", "en": "counter difference"},
    "power_integral": {"fr": "intégrale de puissance", "en": "power integral"},
    "mixed": {"fr": "mixte", "en": "mixed"},
    "raw readings": {"fr": "relevés bruts", "en": "raw readings"},
    "hourly rollups": {"fr": "agrégats horaires", "en": "hourly rollups"},
    "grid_import": {"fr": "réseau (soutirage)", "en": "grid import"},
    "grid_export": {"fr": "réseau (injection)", "en": "grid export"},
    "pv": {"fr": "photovoltaïque", "en": "PV"},
    "solar_heat": {"fr": "chaleur solaire", "en": "solar heat"},
    "fuel": {"fr": "combustible", "en": "fuel"},
    "electricity": {"fr": "électricité consommée", "en": "electricity used"},
    "dryer": {"fr": "séchoir", "en": "dryer"},
    "freezer": {"fr": "congélateur", "en": "freezer"},
    "packaging": {"fr": "ligne d'emballage", "en": "packaging line"},
}


def say(key: str, lang: Lang) -> str:
    """The text of `key` in `lang` (the key itself when none is written)."""
    found = TEXT.get(key)
    return found[lang] if found else key


def number(value: float | None, *, digits: int, lang: Lang) -> str:
    """`value` rounded to `digits` decimals, written the way `lang` writes numbers."""
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}"
    if lang == "fr":
        text = text.replace(",", _NNBSP).replace(".", ",")
    return text
