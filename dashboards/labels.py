"""Every operator-facing word of the dashboards, in French and in English.

Operators read French; `--lang en` gives English. Titles and descriptions are a table of
(French, English) pairs so that a translation is one line here, never a branch in the builders.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Lang(StrEnum):
    FR = "fr"
    EN = "en"


class Label(NamedTuple):
    fr: str
    en: str

    def __call__(self, lang: Lang) -> str:
        return self.fr if lang is Lang.FR else self.en


ROLE_LABELS: dict[str, Label] = {
    "grid_import_energy": Label("Énergie soutirée au réseau", "Grid import energy"),
    "grid_export_energy": Label("Énergie injectée au réseau", "Grid export energy"),
    "pv_energy": Label("Production photovoltaïque", "PV production"),
    "electric_energy": Label("Électricité consommée", "Electricity consumed"),
    "solar_heat_energy": Label("Chaleur solaire", "Solar heat"),
    "fuel_energy": Label("Combustible d'appoint (énergie)", "Backup fuel (energy)"),
    "fuel_volume": Label("Combustible d'appoint (volume)", "Backup fuel (volume)"),
    "compressed_air_volume": Label("Air comprimé", "Compressed air"),
    "electric_power": Label("Puissance électrique", "Electrical power"),
    "fan_power": Label("Puissance ventilateurs", "Fan power"),
    "compressor_power": Label("Puissance compresseur", "Compressor power"),
    "pv_power": Label("Puissance photovoltaïque", "PV power"),
    "grid_power": Label("Puissance réseau (soutirage +)", "Grid power (import +)"),
    "solar_heat_power": Label("Puissance solaire thermique", "Solar heat power"),
    "irradiance": Label("Ensoleillement", "Irradiance"),
    "inlet_air_temp": Label("Température air entrée", "Inlet air temperature"),
    "outlet_air_temp": Label("Température air sortie", "Outlet air temperature"),
    "ambient_temp": Label("Température extérieure", "Outdoor temperature"),
    "cabinet_air_temp": Label("Température air cellule", "Cabinet air temperature"),
    "product_core_temp": Label("Température à cœur produit", "Product core temperature"),
    "evaporator_temp": Label("Température évaporateur", "Evaporator temperature"),
    "inlet_air_humidity": Label("Humidité air entrée", "Inlet air humidity"),
    "outlet_air_humidity": Label("Humidité air sortie", "Outlet air humidity"),
    "ambient_humidity": Label("Humidité extérieure", "Outdoor humidity"),
    "hay_moisture": Label("Humidité du foin", "Hay moisture"),
    "forage_temperature": Label("Température du foin stocké", "Stored hay temperature"),
    "airflow": Label("Débit d'air", "Airflow"),
    "evaporator_pressure": Label("Pression d'évaporation", "Evaporating pressure"),
    "condenser_pressure": Label("Pression de condensation", "Condensing pressure"),
    "refrigerant_leak": Label("Détecteur de fuite frigorigène", "Refrigerant leak detector"),
    "batch_mass": Label("Masse du lot", "Batch mass"),
    "door_open": Label("Porte", "Door"),
    "compressor_running": Label("Compresseur", "Compressor"),
    "line_state": Label("État de la ligne", "Line state"),
    "fan_running": Label("Ventilation", "Fans"),
    "units_packed": Label("Unités conditionnées", "Units packed"),
    "units_rejected": Label("Unités rejetées", "Units rejected"),
    "material_consumed": Label("Matériau consommé", "Material consumed"),
    "line_speed": Label("Cadence", "Line speed"),
    "heat_energy": Label("Chaleur livrée (compteur)", "Heat delivered (meter)"),
    "heat_power": Label("Puissance thermique", "Heat power"),
    "flow_temp": Label("Température départ", "Flow temperature"),
    "return_temp": Label("Température retour", "Return temperature"),
    "volume_flow": Label("Débit de liquide (eau)", "Liquid flow (water)"),
    "voltage": Label("Tension simple", "Phase voltage"),
    "line_voltage": Label("Tension composée", "Line voltage"),
    "current": Label("Courant", "Current"),
    "phase_power": Label("Puissance par phase", "Phase power"),
    "frequency": Label("Fréquence", "Frequency"),
    "power_factor": Label("Facteur de puissance", "Power factor"),
    "reactive_power": Label("Puissance réactive", "Reactive power"),
    "apparent_power": Label("Puissance apparente", "Apparent power"),
    "reactive_energy": Label("Énergie réactive", "Reactive energy"),
    "voltage_thd": Label("Distorsion harmonique tension", "Voltage THD"),
    "current_thd": Label("Distorsion harmonique courant", "Current THD"),
    "measurement": Label("Mesure", "Measurement"),
    "measurement_total": Label("Cumul", "Running total"),
}

KIND_LABELS: dict[str, Label] = {
    "dryer": Label("Séchoir", "Dryer"),
    "freezer": Label("Surgélateur", "Freezer"),
    "packaging": Label("Ligne de conditionnement", "Packaging line"),
    "other": Label("Équipement", "Equipment"),
}

# State codes as the roles define them (telemetry/roles.py): 0/1 contacts, line 0/1/2.
STATE_TEXTS: dict[str, dict[int, tuple[Label, str]]] = {
    "door_open": {0: (Label("Fermée", "Closed"), "green"), 1: (Label("Ouverte", "Open"), "red")},
    "compressor_running": {0: (Label("Arrêt", "Off"), "text"), 1: (Label("Marche", "On"), "green")},
    "fan_running": {0: (Label("Arrêt", "Off"), "text"), 1: (Label("Marche", "On"), "green")},
    "line_state": {0: (Label("Arrêt", "Stopped"), "text"), 1: (Label("Marche", "Running"), "green"),
                   2: (Label("Défaut", "Fault"), "red")},
}
ONLINE_TEXTS: dict[int, tuple[Label, str]] = {
    0: (Label("Hors ligne", "Offline"), "red"), 1: (Label("En ligne", "Online"), "green")}

T = Label  # the builders' tables read better with a short name

TITLES: dict[str, Label] = {
    # dashboards
    "overview": T("Vue d'ensemble", "Overview"),
    "fleet": T("Passerelles et collecte", "Gateways and collection"),
    "evaluation": T("Évaluation énergie et GES", "Energy and GHG evaluation"),
    # sections
    "states": T("État des machines", "Machine states"),
    "alerts": T("Alertes", "Alerts"),
    "energy_today": T("Énergie aujourd'hui", "Energy today"),
    "gateways": T("Passerelles", "Gateways"),
    "temperatures": T("Températures", "Temperatures"),
    "humidity": T("Humidités", "Humidities"),
    "moisture": T("Humidité du foin (séchage)", "Hay moisture (drying)"),
    "solar_vs_grid": T("Solaire et photovoltaïque / réseau", "Solar and PV / grid"),
    "batch": T("Avancement du lot", "Batch progress"),
    "stored_hay": T("Foin stocké : température des bottes (40 / 60 / 80 °C)",
                    "Stored hay: bale temperatures (40 / 60 / 80 °C)"),
    "freezer_temps": T("Températures air et cœur (seuil −18 °C)",
                       "Air and core temperatures (−18 °C threshold)"),
    "compressor": T("Compresseur et puissance", "Compressor and power"),
    "door": T("Porte", "Door"),
    "leak": T("Fuite de frigorigène", "Refrigerant leak"),
    "pressures": T("Pressions frigorifiques", "Refrigerant pressures"),
    "rate": T("Cadence et production", "Rate and output"),
    "stops": T("Arrêts", "Stops"),
    "rejects": T("Rebuts", "Rejects"),
    "specific_energy": T("kWh pour 1000 unités", "kWh per 1000 units"),
    "materials": T("Matériaux d'emballage", "Packaging materials"),
    "power": T("Puissances", "Power"),
    "energy": T("Énergie", "Energy"),
    "other": T("Autres mesures", "Other measurements"),
    # panels
    "today": T("aujourd'hui", "today"),
    "per_interval": T("par intervalle", "per interval"),
    "latest": T("dernière valeur", "latest"),
    "current_alerts": T("Alertes en cours", "Current alerts"),
    "alert_history": T("Historique des alertes", "Alert history"),
    "co2e_today": T("CO2e aujourd'hui", "CO2e today"),
    "co2e_by_scope": T("Émissions par scope et par machine (kg CO2e/jour)",
                       "Emissions by scope and machine (kg CO2e/day)"),
    "avoided": T("Émissions évitées par lot et par référence (kg CO2e)",
                 "Avoided emissions by batch and baseline (kg CO2e)"),
    "last_data": T("Dernière donnée reçue", "Last data received"),
    "gateway_online": T("Passerelles en ligne", "Gateways online"),
    "buffer_depth": T("Messages en attente sur la passerelle", "Messages buffered on the gateway"),
    "sequence_gaps": T("Messages perdus (trous de séquence)", "Lost messages (sequence gaps)"),
    "sequence_repeats": T("Messages reçus deux fois", "Messages received twice"),
    "sequence_void": T("Numéros perdus à une coupure de courant (ou jamais utilisés)",
                       "Numbers lost at a power cut (or never used)"),
    "devices_ok": T("Appareils qui répondent / appareils interrogés",
                    "Devices answering / devices polled"),
    "readings_rate": T("Lectures reçues par intervalle", "Readings received per interval"),
    "bad_readings": T("Lectures en défaut", "Failed readings"),
    "dead_letters": T("Messages rejetés par le collecteur", "Messages rejected by the collector"),
    # All stopped time, in and out of shifts: Grafana does not know the shift calendar, so OEE
    # availability (on planned time) is the api's (docs/indicators.md#packaging-line).
    "stopped_time": T("Temps à l'arrêt (dans et hors des postes)",
                      "Time stopped (in and out of shifts)"),
    "fault_time": T("Temps en défaut", "Time in fault"),
    "door_open_time": T("Temps porte ouverte", "Time door open"),
    "reject_rate": T("Taux de rebut", "Reject rate"),
    "energy_by_source": T("énergie par source (kWh/jour)", "energy by source (kWh/day)"),
    "scopes": T("Émissions et scopes", "Emissions and scopes"),
    "scope_activity": T("Activité par scope (kWh/jour)", "Activity by scope (kWh/day)"),
    "autonomy": T("taux d'autonomie énergétique (%/jour)", "energy autonomy rate (%/day)"),
    "hours_per_state": T("heures par état et par jour", "hours per state per day"),
    "mean_power_hourly": T("Puissance moyenne horaire", "Hourly mean power"),
    "annotations": T("Alertes", "Alerts"),
}

DESCRIPTIONS: dict[str, Label] = {
    "hay_scale": T("Une courbe par sonde, nommée par son emplacement. En dessous de 40 °C : "
                   "normal ; 40 à 60 °C : surveiller (mesurer 2 fois par jour) ; au-delà de "
                   "60 °C : danger d'incendie ; au-delà de 80 °C : appeler le 18 sans déplacer "
                   "les bottes (échelle CIIRPO/Idele).",
                   "One curve per probe, named by its location. Below 40 °C: normal; 40 to "
                   "60 °C: watch (measure twice a day); above 60 °C: fire danger; above 80 °C: "
                   "call the fire brigade (18) without moving the bales (CIIRPO/Idele scale)."),
    "spread": T("Différence entre la première et la dernière valeur du compteur sur la période "
                "affichée (une remise à zéro du compteur fausse ce total ; l'api en tient compte).",
                "Difference between the first and last counter values over the period shown (a "
                "counter reset distorts this total; the api handles resets)."),
    "increase": T("Augmentation du compteur par intervalle (les remises à zéro sont ignorées).",
                  "Counter increase per interval (resets are skipped)."),
    "sampled_time": T("Nombre de lectures dans cet état × période d'interrogation : une "
                      "estimation à la période d'interrogation près.",
                      "Number of readings in that state × poll interval: an estimate to within "
                      "one poll interval."),
    "status": T("Dernier statut publié par la passerelle (à chaque connexion et à chaque "
                "changement d'état d'un appareil) dans les 2 derniers jours.",
                "Last status published by the gateway (at each connection and device health "
                "change) within the last 2 days."),
    "alerts": T("Alertes dont le dernier événement (7 derniers jours) n'est pas la fin de "
                "l'alerte ; écrites par le service d'alerte (mesure alert_events).",
                "Alerts whose latest event (last 7 days) is not their resolution; written by "
                "alerting (measurement alert_events)."),
    "devices_ok": T("Selon le dernier statut de chaque passerelle (publié à la connexion et à "
                    "chaque changement d'état d'un appareil).",
                    "From each gateway's latest status (published at connection and whenever "
                    "a device's health changes)."),
    "daily": T("Somme par jour (UTC) des agrégats horaires de l'api (energy_hourly).",
               "Daily (UTC) sums of the api's hourly rollups (energy_hourly)."),
    "autonomy": T("Énergie renouvelable produite sur site (PV, chaleur solaire) ÷ (elle + "
                  "énergie achetée : réseau, combustible), par jour.",
                  "On-site renewable energy (PV, solar heat) ÷ (itself + purchased energy: "
                  "grid, fuel), per day."),
    "state_codes": T("Heures passées dans chaque code d'état par jour (agrégat state_hourly) ; "
                     "porte/contacts : 1 = ouvert/marche ; ligne : 0 arrêt, 1 marche, 2 défaut.",
                     "Hours spent in each state code per day (state_hourly rollup); "
                     "door/contacts: 1 = open/on; line: 0 stopped, 1 running, 2 fault."),
    "scope_activity": T("Scope 1 : combustible brûlé sur site ; scope 2 : électricité achetée "
                        "(au compteur réseau s'il existe, sinon au départ de la machine).",
                        "Scope 1: fuel burnt on site; scope 2: electricity bought (at the "
                        "grid meter where there is one, else at the machine's feeder)."),
    "co2e_today": T("Scopes 1 et 2 depuis minuit (heure du site), somme des agrégats horaires "
                    "d'émissions de l'api (ghg_hourly) : l'électricité achetée et le combustible "
                    "× le facteur d'émission cité valable à cette heure, fuites de frigorigène "
                    "à l'heure de l'appoint. L'heure en cours compte ce qui est déjà mesuré.",
                    "Scopes 1 and 2 since midnight (site time), the sum of the api's hourly "
                    "emissions rollup (ghg_hourly): electricity bought and fuel × the cited "
                    "emission factor valid at that hour, refrigerant leaks at the hour of the "
                    "top-up. The current hour counts what is measured so far."),
    "co2e_by_scope": T("Somme par jour (UTC) de l'agrégat horaire ghg_hourly de l'api. Scope 1 "
                       ": combustible et fuites de frigorigène (à l'heure de l'appoint) ; scope "
                       "2 : électricité achetée, méthode « location-based » (facteur ADEME "
                       "valable à chaque heure) ; scope 3 : amont du combustible et de "
                       "l'électricité (catégorie 3). Jamais compensé par les émissions évitées. "
                       "Mêmes chiffres que les indicateurs de l'api sur des heures entières.",
                       "Daily (UTC) sums of the api's hourly ghg_hourly rollup. Scope 1: fuel "
                       "and refrigerant leaks (at the hour of the top-up); scope 2: electricity "
                       "bought, location-based (the ADEME factor valid at each hour); scope "
                       "3: upstream of fuel and electricity (category 3). Never "
                       "netted against avoided emissions. The same figures as the api's "
                       "indicators over whole hours."),
    "avoided": T("Somme par jour (UTC) de la fin des lots, par scénario de référence, de la "
                 "mesure avoided_batches que l'api écrit pour chaque lot terminé : ce que "
                 "GET …/batches/{id}/indicators?baseline=<nom> répond (référence − réel, "
                 "scopes 1 et 2 du lot). Vide sans lot ni référence enregistrés. Jamais "
                 "soustrait des émissions ci-dessus.",
                 "Daily (UTC, by batch end) sums per baseline of the avoided_batches "
                 "measurement the api writes for each finished batch: what "
                 "GET …/batches/{id}/indicators?baseline=<name> answers (baseline − actual, "
                 "the batch's scopes 1 and 2). Empty without recorded batches and baselines. "
                 "Never subtracted from the emissions above."),
    "sequence_void": T("Après une coupure de courant, une passerelle en écriture différée ne sait "
                       "plus quels numéros elle a utilisés dans la dernière minute : elle les "
                       "déclare (buffer_void). Chacun est une lecture perdue avec la coupure ou "
                       "un numéro jamais utilisé ; ils ne sont pas comptés comme perdus.",
                       "After a power cut a write-behind gateway no longer knows which numbers it "
                       "used in the last minute: it declares them (buffer_void). Each is a "
                       "reading lost with the cut or a number never used; they are not counted "
                       "as lost."),
    "dead_letters": T("Messages mis de côté par le collecteur (invalides ou refusés par "
                      "InfluxDB), d'après l'état qu'il publie toutes les 30 s ; "
                      "`dynamo collector dead-letters list` les détaille.",
                      "Messages the collector set aside (invalid, or refused by InfluxDB), from "
                      "the status it writes every 30 s; `dynamo collector dead-letters list` "
                      "shows them."),
    "specific_energy": T("Électricité consommée ÷ unités conditionnées × 1000, sur la période.",
                         "Electricity consumed ÷ units packed × 1000, over the period."),
    "reject_rate": T("Unités rejetées ÷ (conditionnées + rejetées), en %.",
                     "Units rejected ÷ (packed + rejected), in %."),
    "freezer_threshold": T("La ligne rouge marque −18 °C, la température à cœur à atteindre.",
                           "The red line marks −18 °C, the core temperature to reach."),
}
