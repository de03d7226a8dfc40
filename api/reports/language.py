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
        "fr": "Énergie : différence des compteurs cumulés (tours de compteur des registres "
              "entiers et remises à zéro traités), sinon intégrale de la puissance ; "
              "au-delà de 31 jours, agrégats horaires. GES = "
              "activité × facteur d'émission, chaque facteur séparé en combustion (ou "
              "production) et amont ; scope 1 : combustion sur site et fuites de fluide "
              "frigorigène (PRG à 100 ans, rapport {gwp} du GIEC) ; scope 2 en double "
              "méthode, « location-based » (mix moyen) et « market-based » (contrat du "
              "fournisseur, sinon mix résiduel) ; scope 3 : amont des énergies et matériaux "
              "achetés. Les lots comptent dans la période où ils se terminent.",
        "en": "Energy: difference of cumulative counters (roll-overs of integer registers "
              "and resets handled), otherwise the integral of power; beyond 31 days, "
              "hourly rollups. GHG = activity × emission "
              "factor, each factor split into its combustion (or generation) and upstream "
              "parts; scope 1: combustion on site and refrigerant leaks (GWP-100, IPCC {gwp}); "
              "scope 2 reported twice, location-based (average mix) and market-based "
              "(supplier's contract, else the residual mix); scope 3: upstream of energy and "
              "purchased materials. Batches count in the period they end in."},
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
    "rollovers": {"fr": "Tours de compteur", "en": "Roll-overs"},
    "drop_rollover": {"fr": "{sensor} : tour de compteur le {at} ({before} → {after} ; "
                            "{increment} comptés)",
                      "en": "{sensor}: counter rolled over at {at} ({before} → {after}; "
                            "{increment} counted)"},
    "drop_reset": {"fr": "{sensor} : remise à zéro le {at} ({before} → {after} ; compté "
                         "depuis zéro : {increment})",
                   "en": "{sensor}: counter reset at {at} ({before} → {after}; counted from "
                         "zero: {increment})"},
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
    "scope2_location": {"fr": "Scope 2 location (kgCO2e)", "en": "Scope 2 location (kgCO2e)"},
    "scope2_market": {"fr": "Scope 2 market (kgCO2e)", "en": "Scope 2 market (kgCO2e)"},
    "scope3": {"fr": "Scope 3 (kgCO2e)", "en": "Scope 3 (kgCO2e)"},
    "total_location": {"fr": "Total, scope 2 location (kgCO2e)",
                       "en": "Total, scope 2 location (kgCO2e)"},
    "inventory": {"fr": "Inventaire des émissions de gaz à effet de serre",
                  "en": "Greenhouse gas inventory"},
    "scope_table": {"fr": "Par scope (GHG Protocol)", "en": "By scope (GHG Protocol)"},
    "iso_table": {"fr": "Par catégorie ISO 14064-1 (postes de la méthode BEGES)",
                  "en": "By ISO 14064-1 category (BEGES method postes)"},
    "item": {"fr": "Poste", "en": "Item"},
    "co2e_kg": {"fr": "kgCO2e", "en": "kgCO2e"},
    "pm_kg": {"fr": "± kgCO2e", "en": "± kgCO2e"},
    "pm_pct": {"fr": "± %", "en": "± %"},
    "beges_postes": {"fr": "Postes BEGES", "en": "BEGES postes"},
    "biogenic": {"fr": "CO2 biogénique (hors totaux)", "en": "Biogenic CO2 (outside the totals)"},
    "gwp_set": {"fr": "Pouvoirs de réchauffement global : GIEC {gwp}, à 100 ans.",
                "en": "Global warming potentials: IPCC {gwp}, 100-year."},
    "inventory_note": {
        "fr": "± : incertitude élargie de chaque total, racine de la somme des carrés des "
              "incertitudes indépendantes de ses lignes (facteur et activité). Les deux "
              "méthodes du scope 2 ne s'additionnent jamais ; le scope 3 comprend l'amont des "
              "énergies (catégorie 3) et les matériaux achetés (catégorie 1). Le CO2 "
              "biogénique est déclaré à part, hors de tout total. Catégorie 2 ISO : électricité "
              "en méthode « location-based ».",
        "en": "±: uncertainty of each total, root-sum-square of the independent uncertainties "
              "of its lines (factor and activity). The two scope 2 methods are never added "
              "together; scope 3 holds upstream of energy (category 3) and purchased materials "
              "(category 1). Biogenic CO2 is reported apart, outside every total. ISO category "
              "2: electricity, location-based."},
    "base_year": {"fr": "Comparaison à l'année de référence", "en": "Base-year comparison"},
    "base_year_none": {"fr": "aucune année de référence définie",
                       "en": "no base year set"},
    "base_year_intro": {
        "fr": "Année de référence {year}, figée le {at} par {who}. Règle de recalcul "
              "(ISO 14064-1:2018 §6.4) : l'original n'est jamais remplacé ; quand un facteur ou "
              "une donnée de l'année est corrigé, le chiffre recalculé est montré à côté, avec "
              "sa raison.",
        "en": "Base year {year}, frozen on {at} by {who}. Recalculation rule (ISO 14064-1:2018 "
              "§6.4): the original is never replaced; when a factor or a datum of the year is "
              "corrected, the recalculated figure is shown beside it, with its reason."},
    "base_year_error": {"fr": "recalcul impossible", "en": "recalculation impossible"},
    "figure": {"fr": "Indicateur", "en": "Figure"},
    "base_frozen": {"fr": "Année de réf. (original)", "en": "Base year (original)"},
    "base_recalculated": {"fr": "Année de réf. (recalculée)",
                          "en": "Base year (recalculated)"},
    "this_period": {"fr": "Période du rapport", "en": "Report period"},
    "reason": {"fr": "Raison du recalcul", "en": "Reason for the recalculation"},
    "unchanged": {"fr": "inchangé", "en": "unchanged"},
    "reason_factor": {"fr": "facteur {subject} : version {frozen} → {current}",
                      "en": "factor {subject}: version {frozen} → {current}"},
    "reason_record": {"fr": "enregistrement {subject} corrigé : {frozen} → {current}",
                      "en": "record {subject} corrected: {frozen} → {current}"},
    "reason_record_added": {"fr": "enregistrement {subject} ajouté depuis ({current})",
                            "en": "record {subject} added since ({current})"},
    "reason_record_deleted": {"fr": "enregistrement {subject} supprimé depuis",
                              "en": "record {subject} deleted since"},
    "reason_record_voided": {"fr": "enregistrement {subject} annulé depuis",
                             "en": "record {subject} voided since"},
    "reason_readings": {"fr": "relevés de {subject} modifiés : {frozen} → {current}",
                        "en": "readings of {subject} changed: {frozen} → {current}"},
    "reason_none": {"fr": "aucune raison prouvable (méthode modifiée ?)",
                    "en": "no provable reason (method changed?)"},
    "avoided_table": {"fr": "Émissions évitées selon chaque scénario de référence",
                      "en": "Avoided emissions under each baseline"},
    "avoided_sensitivity": {
        "fr": "Le chiffre évité dépend du scénario de référence : il est donné sous chacun "
              "(historique et actuel), chacun avec sa source et son année.",
        "en": "The avoided figure depends on the baseline: it is given under each (historical "
              "and current), each with its source and year."},
    "status": {"fr": "Statut", "en": "Status"},
    "year": {"fr": "Année", "en": "Year"},
    "baseline_co2e": {"fr": "Référence (kgCO2e)", "en": "Baseline (kgCO2e)"},
    "actual_co2e": {"fr": "Réel (kgCO2e)", "en": "Actual (kgCO2e)"},
    "historical": {"fr": "historique", "en": "historical"},
    "current": {"fr": "actuel", "en": "current"},
    "stored": {"fr": "propre au site", "en": "site's own"},
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
