"""The evaluation dashboard: energy and production indicators over time, from rollups only.

Long periods never scan raw readings (InfluxDB 3 Core refuses spans over ~72 h of files): every
query here reads the api's hourly rollups (`energy_hourly`, `sensor_hourly`, `state_hourly`,
docs/influxdb-schema.md), summed per day. Emissions by scope come from the api's `ghg_hourly`
rollup, which the api computes with its cited factors: no factor is held here. Avoided
emissions come from the api's `avoided_batches` (one point per finished batch and baseline,
computed by the api's per-batch indicators), summed per day of the batches' end.
"""

from __future__ import annotations

from dashboards import query
from dashboards.dashboard import Dashboard, Section
from dashboards.inventory import EquipmentInfo, SiteInfo
from dashboards.labels import DESCRIPTIONS, TITLES, Lang
from dashboards.machine import dashboard_uid, equipment_title
from dashboards.measurements import (
    AVOIDED_BATCHES,
    ENERGY_HOURLY,
    PURCHASED_SOURCES,
    RENEWABLE_SOURCES,
    SENSOR_HOURLY,
    STATE_HOURLY,
)
from dashboards.panel import Expression, Panel, PanelType, Target, grafana_unit
from dashboards.panels import sensor_label
from telemetry.influx.influxql import quote_ident
from telemetry.roles import Kind

DAY = "1d"  # UTC days: tz() is not in the InfluxQL every supported server serves


def _sources(sources: tuple[str, ...]) -> str:
    return "(" + " OR ".join(query.tag_is("source", s) for s in sources) + ")"


def _energy(site: str, equipment: str, *, sources: tuple[str, ...] = (),
            by_source: bool = False) -> str:
    where = [query.tag_is("site", site), query.tag_is("equipment", equipment)]
    if sources:
        where.append(_sources(sources))
    group = f"time({DAY})" + (f", {quote_ident('source')}" if by_source else "")
    return (f"SELECT sum({quote_ident('energy_kwh')}) FROM {quote_ident(ENERGY_HOURLY)} "
            f"WHERE {' AND '.join(where)} AND {query.TIME_FILTER} GROUP BY {group} fill(none)")


def _sensor_increase(site: str, sensor: str) -> str:
    return (f"SELECT sum({quote_ident('increase')}) FROM {quote_ident(SENSOR_HOURLY)} "
            f"WHERE {query.tag_is('site', site)} AND {query.tag_is('sensor', sensor)} "
            f"AND {query.TIME_FILTER} GROUP BY time({DAY}) fill(none)")


def _state_hours(site: str, sensor: str) -> str:
    return (f"SELECT sum({quote_ident('seconds')}) / 3600 FROM {quote_ident(STATE_HOURLY)} "
            f"WHERE {query.tag_is('site', site)} AND {query.tag_is('sensor', sensor)} "
            f"AND {query.TIME_FILTER} GROUP BY time({DAY}), {quote_ident('state')} fill(none)")


def _avoided(site: str) -> str:
    return (f"SELECT sum({quote_ident('avoided_co2e_kg')}) FROM {quote_ident(AVOIDED_BATCHES)} "
            f"WHERE {query.tag_is('site', site)} AND {query.TIME_FILTER} "
            f"GROUP BY time({DAY}), {quote_ident('baseline')} fill(none)")


def _equipment_panels(equipment: EquipmentInfo, lang: Lang) -> list[Panel]:
    site, name = equipment.site, equipment_title(equipment, lang)
    out = [Panel(PanelType.BARS, f"{name} — {TITLES['energy_by_source'](lang)}",
                 [Target(_energy(site, equipment.id, by_source=True), alias="$tag_source")],
                 unit=grafana_unit("kWh"), width=12, description=DESCRIPTIONS["daily"](lang))]
    if equipment.with_role("pv_energy", "solar_heat_energy"):
        # Only on-site renewable over renewable + purchased: the dryer's autonomy rate.
        out.append(Panel(
            PanelType.BARS, f"{name} — {TITLES['autonomy'](lang)}",
            [Target(_energy(site, equipment.id, sources=RENEWABLE_SOURCES)),
             Target(_energy(site, equipment.id, sources=PURCHASED_SOURCES)),
             Expression("$A / ($A + $B) * 100")],
            unit="percent", width=12, hidden_refs=frozenset({"A", "B"}),
            description=DESCRIPTIONS["autonomy"](lang)))
    units = equipment.with_role("units_packed")
    if units:
        out.append(Panel(
            PanelType.BARS, f"{name} — {TITLES['specific_energy'](lang)}",
            [Target(_energy(site, equipment.id, sources=("electricity",))),
             Target(_sensor_increase(site, units[0].id)),
             Expression("$A / $B * 1000")],
            unit="suffix: kWh/1000 u", width=12, hidden_refs=frozenset({"A", "B"}),
            description=DESCRIPTIONS["specific_energy"](lang)))
    states = [s for s in equipment.sensors if s.kind is Kind.STATE]
    for sensor in states:
        out.append(Panel(
            PanelType.BARS, f"{name} — {sensor_label(sensor, states, lang)} "
            f"({TITLES['hours_per_state'](lang)})",
            [Target(_state_hours(site, sensor.id), alias="$tag_state")], unit="h", width=12,
            description=DESCRIPTIONS["state_codes"](lang)))
    return out


def _scope_sources(equipment: EquipmentInfo) -> list[tuple[int, str]]:
    """(scope, rollup source) of an equipment's activities: fuel burnt on site is scope 1,
    electricity bought is scope 2 — at the grid meter where there is one (PV it makes itself
    is not bought), else at the equipment's own feeder."""
    out = []
    if equipment.with_role("fuel_energy"):
        out.append((1, "fuel"))
    if equipment.with_role("grid_import_energy"):
        out.append((2, "grid_import"))
    elif equipment.with_role("electric_energy"):
        out.append((2, "electricity"))
    return out


def evaluation_dashboard(site: SiteInfo, lang: Lang) -> Dashboard:
    """Indicators over time for the evaluation team."""
    scope_targets = [Target(_energy(site.id, e.id, sources=(source,)),
                            alias=f"{equipment_title(e, lang)} — scope {scope}")
                     for e in site.equipment for scope, source in _scope_sources(e)]
    sections = [
        Section(TITLES["scopes"](lang), [
            Panel(PanelType.BARS, TITLES["co2e_by_scope"](lang),
                  [Target(query.co2e_sum(site=site.id, group_by=("scope", "equipment"),
                                         interval=DAY),
                          alias="scope $tag_scope — $tag_equipment")],
                  unit="suffix: kg CO2e", width=24, stacked=True,
                  description=DESCRIPTIONS["co2e_by_scope"](lang)),
            # Sparse: a batch ends a few times a week, and none without recorded batches and
            # baselines (the simulated chain of the query tests records none).
            Panel(PanelType.BARS, TITLES["avoided"](lang),
                  [Target(_avoided(site.id), alias="$tag_baseline", sparse=True)],
                  unit="suffix: kg CO2e", width=24,
                  description=DESCRIPTIONS["avoided"](lang)),
            Panel(PanelType.BARS, TITLES["scope_activity"](lang), scope_targets,
                  unit=grafana_unit("kWh"), width=24,
                  description=DESCRIPTIONS["scope_activity"](lang)),
        ]),
        *(Section(equipment_title(e, lang), _equipment_panels(e, lang))
          for e in site.equipment),
    ]
    return Dashboard(
        uid=dashboard_uid(site.id, "evaluation"), site=site.id,
        title=f"{TITLES['evaluation'](lang)} — {site.id}", timezone=site.timezone,
        tags=("evaluation",), sections=sections, time_from="now-30d", refresh="1h")
