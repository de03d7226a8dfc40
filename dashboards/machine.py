"""One dashboard per machine, from its sensors' roles and its kind.

`LAYOUTS` is the table of what each kind of equipment shows, as sections of role groups; a
group whose roles have no sensor in the configuration is left out, and sensors whose role no
group of the kind names land in "Other measurements", so every configured sensor is shown and
an equipment of an unknown kind still gets a dashboard.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from dashboards import panels, query
from dashboards.dashboard import Annotation, Dashboard, Section
from dashboards.inventory import EquipmentInfo, SensorInfo
from dashboards.labels import DESCRIPTIONS, KIND_LABELS, ROLE_LABELS, TITLES, Lang
from dashboards.measurements import ALERT_EVENTS, FIRED
from dashboards.panel import Panel, Threshold
from telemetry.roles import Kind
from telemetry.site import EquipmentKind

CORE_TEMP_TARGET_C = -18.0  # frozen food's core temperature to reach (and keep)
SAFE_HAY_MOISTURE_PCT = 15.0  # barn-dried hay is safe to store at ≤ 15 % moisture
# Stored hay's self-heating scale (docs/sources.md#hay-self-heating): watch, danger, call 18.
HAY_SCALE = (Threshold(40.0, "orange"), Threshold(60.0, "red"), Threshold(80.0, "dark-red"))


@dataclass(frozen=True, slots=True)
class Group:
    """Roles shown together, as the kind of the first role present dictates."""

    roles: tuple[str, ...]
    title: str = ""  # a TITLES key; the first role's label when empty
    thresholds: tuple[Threshold, ...] = ()
    description: str = ""  # a DESCRIPTIONS key
    latest: bool = False  # also a big number of the latest values


@dataclass(frozen=True, slots=True)
class Ratio:
    """A ratio of two counters by role (numerator roles in order of preference)."""

    numerators: tuple[str, ...]
    denominator: str
    title: str
    expression: str
    unit: str
    description: str


Item = Group | Ratio

LAYOUTS: dict[EquipmentKind, tuple[tuple[str, tuple[Item, ...]], ...]] = {
    EquipmentKind.DRYER: (
        ("temperatures", (Group(("inlet_air_temp", "outlet_air_temp", "ambient_temp"),
                                "temperatures", latest=True),)),
        ("humidity", (Group(("inlet_air_humidity", "outlet_air_humidity", "ambient_humidity"),
                            "humidity"), Group(("airflow",)))),
        ("batch", (Group(("hay_moisture",), "moisture",
                         thresholds=(Threshold(SAFE_HAY_MOISTURE_PCT, "orange"),), latest=True),
                   Group(("batch_mass",), latest=True), Group(("fan_running",)))),
        ("stored_hay", (Group(("forage_temperature",), "stored_hay", thresholds=HAY_SCALE,
                              description="hay_scale", latest=True),)),
        ("solar_vs_grid", (Group(("pv_power", "solar_heat_power", "grid_power", "fan_power"),
                                 "power"),
                           Group(("irradiance",)),
                           Group(("pv_energy", "solar_heat_energy", "grid_import_energy",
                                  "grid_export_energy", "electric_energy", "fuel_energy"),
                                 "energy"),
                           Group(("fuel_volume",)))),
    ),
    EquipmentKind.FREEZER: (
        ("freezer_temps", (Group(("cabinet_air_temp", "product_core_temp", "evaporator_temp"),
                                 "freezer_temps",
                                 thresholds=(Threshold(CORE_TEMP_TARGET_C, "red"),),
                                 description="freezer_threshold", latest=True),)),
        ("compressor", (Group(("compressor_power", "electric_power"), "power"),
                        Group(("compressor_running",)),
                        Group(("electric_energy", "grid_import_energy"), "energy"))),
        ("door", (Group(("door_open",), "door"),)),
        ("leak", (Group(("refrigerant_leak",), "leak", latest=True),)),
        ("pressures", (Group(("evaporator_pressure", "condenser_pressure"), "pressures"),)),
        ("batch", (Group(("batch_mass",), latest=True),)),
    ),
    EquipmentKind.PACKAGING: (
        ("rate", (Group(("line_speed",), latest=True), Group(("units_packed",)))),
        ("stops", (Group(("line_state",), "stops"),)),
        ("rejects", (Group(("units_rejected",), "rejects"),
                     Ratio(("units_rejected",), "units_packed", "reject_rate",
                           "$A / ($A + $B) * 100", "percent", "reject_rate"))),
        ("specific_energy", (Ratio(("electric_energy", "grid_import_energy"), "units_packed",
                                   "specific_energy", "$A / $B * 1000", "suffix: kWh/1000 u",
                                   "specific_energy"),
                             Group(("electric_power",)),
                             Group(("electric_energy",), "energy"))),
        ("materials", (Group(("material_consumed",), "materials"),
                       Group(("compressed_air_volume",)))),
    ),
}


def dashboard_uid(*parts: str) -> str:
    """A stable uid from identifiers; Grafana allows 40 characters."""
    uid = "-".join(("dynamo", *parts))
    if len(uid) <= 40:
        return uid
    return f"{uid[:31]}-{hashlib.sha1(uid.encode()).hexdigest()[:8]}"


def alert_annotation(site: str, lang: Lang, equipment: str | None = None) -> Annotation:
    """Alerts fired, drawn on the graphs (measurement alert_events, written by alerting)."""
    where = [query.tag_is("event", FIRED)]
    if equipment:
        where.append(query.tag_is("equipment", equipment))
    return Annotation(
        name=TITLES["annotations"](lang),
        query=query.events(site=site, measurement=ALERT_EVENTS,
                           fields=("title", "detail", "rule", "severity"), where=where),
        text_column="title", tags_columns=("rule", "severity"))


def equipment_title(equipment: EquipmentInfo, lang: Lang) -> str:
    """The configuration's name (written for operators, in French), else kind and id."""
    if lang is Lang.FR and equipment.name:
        return equipment.name
    return f"{KIND_LABELS[equipment.kind.value](lang)} {equipment.id}"


def _title(key: str, sensors: list[SensorInfo], lang: Lang) -> str:
    return TITLES[key](lang) if key else ROLE_LABELS[sensors[0].role](lang)


def _group_panels(equipment: EquipmentInfo, group: Group, lang: Lang) -> list[Panel]:
    sensors = equipment.with_role(*group.roles)
    if not sensors:
        return []
    title = _title(group.title, sensors, lang)
    kind = sensors[0].kind
    if kind is Kind.STATE:
        return panels.states(equipment, sensors, title=title, lang=lang)
    if kind is Kind.COUNTER:
        return panels.counters(equipment, [s for s in sensors if s.kind is Kind.COUNTER],
                               title=title, lang=lang)
    gauges = [s for s in sensors if s.kind is Kind.GAUGE]
    description = DESCRIPTIONS[group.description](lang) if group.description else ""
    out = [panels.gauges(equipment, gauges, title=title, lang=lang,
                         thresholds=group.thresholds, description=description,
                         width=16 if group.latest else 12)]
    if group.latest:
        out.append(panels.latest(equipment, gauges, title=title, lang=lang,
                                 thresholds=group.thresholds, width=8))
    return out


def _ratio_panels(equipment: EquipmentInfo, ratio: Ratio, lang: Lang) -> list[Panel]:
    numerators = equipment.with_role(*ratio.numerators)
    denominators = equipment.with_role(ratio.denominator)
    if not numerators or not denominators:
        return []
    return [panels.ratio(equipment, numerators[0], denominators[0],
                         title=TITLES[ratio.title](lang), lang=lang,
                         expression=ratio.expression, unit=ratio.unit,
                         description=DESCRIPTIONS[ratio.description](lang))]


def machine_dashboard(equipment: EquipmentInfo, lang: Lang) -> Dashboard:
    """The dashboard of one machine."""
    sections = []
    shown: set[str] = set()
    for section_key, items in LAYOUTS.get(equipment.kind, ()):
        section_panels: list[Panel] = []
        for item in items:
            if isinstance(item, Group):
                section_panels += _group_panels(equipment, item, lang)
                shown.update(item.roles)
            else:
                section_panels += _ratio_panels(equipment, item, lang)
        if section_panels:
            sections.append(Section(TITLES[section_key](lang), section_panels))
    others: list[Panel] = []
    for role in dict.fromkeys(s.role for s in equipment.sensors if s.role not in shown):
        others += _group_panels(equipment, Group((role,)), lang)
    if others:
        sections.append(Section(TITLES["other"](lang), others))
    kind = KIND_LABELS[equipment.kind.value](lang)
    return Dashboard(
        uid=dashboard_uid(equipment.site, equipment.id), site=equipment.site,
        title=f"{equipment_title(equipment, lang)} — {equipment.site}",
        description=f"{kind} {equipment.id} ({equipment.gateway})",
        tags=(equipment.kind.value, equipment.id), timezone=equipment.timezone,
        sections=sections, annotations=(alert_annotation(equipment.site, lang, equipment.id),),
    )
