"""The site overview: every machine's state, current alerts, today's energy and CO2e, gateways."""

from __future__ import annotations

from dashboards import panels, query
from dashboards.dashboard import Dashboard, Section
from dashboards.inventory import SiteInfo
from dashboards.labels import DESCRIPTIONS, ONLINE_TEXTS, STATE_TEXTS, TITLES, Lang
from dashboards.machine import alert_annotation, dashboard_uid, equipment_title
from dashboards.measurements import (
    ALERT_EVENTS,
    EMISSION_ROLES,
    GATEWAY_STATUS,
    READINGS,
    RESOLVED,
)
from dashboards.panel import Panel, PanelType, Target, state_mappings
from telemetry.influx.influxql import quote_ident
from telemetry.roles import ENERGY_ROLES

# The state that says best whether a machine works, by order of preference.
STATE_ROLES = ("line_state", "compressor_running", "fan_running", "door_open")
STATUS_WINDOW = "now-2d"  # within InfluxDB 3 Core's default query span (~72 h)


def _states(site: SiteInfo, lang: Lang) -> list[Panel]:
    out = []
    for equipment in site.equipment:
        sensors = equipment.with_role(*STATE_ROLES)
        if not sensors:
            continue
        sensor = sensors[0]
        out.append(Panel(
            PanelType.STAT, equipment_title(equipment, lang),
            [Target(query.sensor_last(site=site.id, sensor=sensor.id),
                    alias=panels.sensor_label(sensor, sensors, lang))],
            mappings=state_mappings(STATE_TEXTS.get(sensor.role, {}), lang), width=8, height=4,
            time_from="now-1h"))
    return out


def _alerts(site: SiteInfo, lang: Lang) -> list[Panel]:
    # The current state of an alert is its latest event: InfluxQL cannot pick a tag by time,
    # so Grafana does, keeping per alert occurrence the newest row and dropping resolved ones.
    events = query.events(site=site.id, measurement=ALERT_EVENTS,
                          fields=("alert_id", "event", "equipment", "rule", "severity",
                                  "title", "subject"))
    first = {"aggregations": ["first"], "operation": "aggregate"}
    newest_per_alert = [
        {"id": "sortBy", "options": {"sort": [{"field": "Time", "desc": True}]}},
        {"id": "groupBy", "options": {"fields": {
            "alert_id": {"aggregations": [], "operation": "groupby"},
            **{name: first for name in ("Time", "event", "equipment", "rule", "severity",
                                        "title", "subject")}}}},
        {"id": "filterByValue", "options": {
            "type": "exclude", "match": "any",
            "filters": [{"fieldName": "event (first)",
                         "config": {"id": "equal", "options": {"value": RESOLVED}}}]}},
    ]
    return [Panel(PanelType.TABLE, TITLES["current_alerts"](lang),
                  [Target(events, table=True, sparse=True)], width=24, height=6,
                  time_from="now-7d", transformations=newest_per_alert,
                  description=DESCRIPTIONS["alerts"](lang))]


def _energy(site: SiteInfo, lang: Lang) -> list[Panel]:
    out = []
    for equipment in site.equipment:
        sensors = [s for s in equipment.sensors if s.role in ENERGY_ROLES]
        if sensors:
            [panel] = [p for p in panels.counters(equipment, sensors,
                                                  title=equipment_title(equipment, lang),
                                                  lang=lang) if p.type is PanelType.STAT]
            out.append(Panel(PanelType.STAT, panel.title, panel.targets, unit=panel.unit,
                             decimals=1, time_from=panels.TODAY, width=8, height=6,
                             description=panel.description))
    return out


def _co2e(site: SiteInfo, lang: Lang) -> list[Panel]:
    return [Panel(PanelType.STAT, f"{equipment_title(e, lang)} — {TITLES['co2e_today'](lang)}",
                  [Target(query.co2e_sum(site=site.id, equipment=e.id, scopes=("1", "2")))],
                  unit="suffix: kg CO2e", decimals=2, time_from=panels.TODAY, width=8,
                  height=5, description=DESCRIPTIONS["co2e_today"](lang))
            for e in site.equipment if e.with_role(*EMISSION_ROLES)]


def _gateways(site: SiteInfo, lang: Lang) -> list[Panel]:
    online = query.per_gateway(site=site.id, measurement=GATEWAY_STATUS,
                               select=f"last({quote_ident('online')})", interval=False)
    last_data = query.per_gateway(site=site.id, measurement=READINGS,
                                  select=f"last({quote_ident('value')})", interval=False)
    return [
        Panel(PanelType.STAT, TITLES["gateway_online"](lang),
              [Target(online, alias="$tag_gateway")],
              mappings=state_mappings(ONLINE_TEXTS, lang), width=12, height=5,
              time_from=STATUS_WINDOW, description=DESCRIPTIONS["status"](lang)),
        Panel(PanelType.TABLE, TITLES["last_data"](lang),
              [Target(last_data, table=True)], width=12, height=5, time_from="now-1d",
              transformations=({"id": "organize", "options": {
                  "excludeByName": {"last": True},
                  "renameByName": {"Time": TITLES["last_data"](lang)}}},)),
    ]


def overview_dashboard(site: SiteInfo, lang: Lang) -> Dashboard:
    """The overview of one site."""
    sections = [
        Section(TITLES["states"](lang), _states(site, lang)),
        Section(TITLES["alerts"](lang), _alerts(site, lang)),
        Section(TITLES["energy_today"](lang), _energy(site, lang)),
        Section(TITLES["co2e_today"](lang), _co2e(site, lang)),
        Section(TITLES["gateways"](lang), _gateways(site, lang)),
    ]
    return Dashboard(
        uid=dashboard_uid(site.id, "overview"), site=site.id,
        title=f"{TITLES['overview'](lang)} — {site.id}", timezone=site.timezone,
        tags=("overview",), sections=[s for s in sections if s.panels],
        annotations=(alert_annotation(site.id, lang),), time_from="now-24h")
