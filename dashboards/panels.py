"""Panels made from sensors by the kind of their role: gauges, counters, states.

Every function takes the sensors that a configuration gives a role and returns panels; nothing
here knows a sensor id. Sensors sharing a panel are shown in the unit of the first one, the
others converted by the units library (telemetry.units) inside the query.
"""

from __future__ import annotations

from collections.abc import Sequence

from dashboards import query
from dashboards.inventory import EquipmentInfo, SensorInfo
from dashboards.labels import DESCRIPTIONS, ROLE_LABELS, STATE_TEXTS, TITLES, Lang
from dashboards.panel import (
    Expression,
    Panel,
    PanelType,
    Target,
    Threshold,
    grafana_unit,
    state_mappings,
)
from telemetry.units import convert

TODAY = "now/d"  # Grafana's "today so far", in the dashboard's time zone (the site's)

# State codes worth a "time spent" figure: (code, title key).
STATE_DURATIONS: dict[str, tuple[tuple[int, str], ...]] = {
    "door_open": ((1, "door_open_time"),),
    "line_state": ((0, "stopped_time"), (2, "fault_time")),
}


def sensor_label(sensor: SensorInfo, siblings: Sequence[SensorInfo], lang: Lang) -> str:
    """The role's name, with what tells the sensor apart when several share the role."""
    label = ROLE_LABELS[sensor.role](lang)
    if sum(1 for s in siblings if s.role == sensor.role) > 1:
        detail = sensor.location or ", ".join(v for _, v in sensor.attributes) or sensor.id
        label = f"{label} ({detail})"
    return label


def _linear(sensor: SensorInfo, unit: str) -> query.Linear:
    if sensor.unit == unit or not unit:
        return query.IDENTITY
    offset = convert(0.0, from_unit=sensor.unit, to_unit=unit)
    return convert(1.0, from_unit=sensor.unit, to_unit=unit) - offset, offset


def gauges(equipment: EquipmentInfo, sensors: Sequence[SensorInfo], *, title: str,
           lang: Lang, thresholds: Sequence[Threshold] = (), description: str = "",
           width: int = 12) -> Panel:
    """One time series per gauge sensor (mean per interval)."""
    unit = sensors[0].unit
    targets = [Target(query.sensor_mean(site=equipment.site, sensor=s.id,
                                        linear=_linear(s, unit)),
                      alias=sensor_label(s, sensors, lang)) for s in sensors]
    return Panel(PanelType.TIMESERIES, title, targets, unit=grafana_unit(unit),
                 thresholds=thresholds, description=description, width=width)


def latest(equipment: EquipmentInfo, sensors: Sequence[SensorInfo], *, title: str,
           lang: Lang, thresholds: Sequence[Threshold] = (), width: int = 6) -> Panel:
    """The latest value of each sensor as a big number."""
    unit = sensors[0].unit
    targets = [Target(query.sensor_last(site=equipment.site, sensor=s.id,
                                        linear=_linear(s, unit)),
                      alias=sensor_label(s, sensors, lang)) for s in sensors]
    return Panel(PanelType.STAT, f"{title} ({TITLES['latest'](lang)})", targets,
                 unit=grafana_unit(unit), decimals=1, thresholds=thresholds, width=width,
                 height=5)


def counters(equipment: EquipmentInfo, sensors: Sequence[SensorInfo], *, title: str,
             lang: Lang) -> list[Panel]:
    """Per-interval increases as bars, and today's total."""
    unit = sensors[0].unit
    increase = [Target(query.counter_increase(site=equipment.site, sensor=s.id,
                                              linear=_linear(s, unit)),
                       alias=sensor_label(s, sensors, lang)) for s in sensors]
    today = [Target(query.counter_spread(site=equipment.site, sensor=s.id,
                                         linear=_linear(s, unit)),
                    alias=sensor_label(s, sensors, lang)) for s in sensors]
    return [
        Panel(PanelType.BARS, f"{title} {TITLES['per_interval'](lang)}", increase,
              unit=grafana_unit(unit), width=16,
              description=DESCRIPTIONS["increase"](lang)),
        Panel(PanelType.STAT, f"{title} ({_today(lang)})", today, unit=grafana_unit(unit),
              decimals=1, time_from=TODAY, width=8, description=DESCRIPTIONS["spread"](lang)),
    ]


def states(equipment: EquipmentInfo, sensors: Sequence[SensorInfo], *, title: str,
           lang: Lang) -> list[Panel]:
    """A state timeline, and today's time spent in the notable states."""
    panels = []
    for sensor in sensors:
        texts = STATE_TEXTS.get(sensor.role, {})
        panels.append(Panel(
            PanelType.STATE_TIMELINE, sensor_label(sensor, sensors, lang) if len(sensors) > 1
            else title,
            [Target(query.sensor_last_per_interval(site=equipment.site, sensor=sensor.id),
                    alias=sensor_label(sensor, sensors, lang))],
            mappings=state_mappings(texts, lang), width=16, height=5))
        durations = STATE_DURATIONS.get(sensor.role, ())
        if durations:
            targets = [Target(query.state_seconds(site=equipment.site, sensor=sensor.id,
                                                  code=code,
                                                  poll_interval_s=sensor.poll_interval_s),
                              alias=TITLES[key](lang), sparse=True)
                       for code, key in durations]
            names = " / ".join(TITLES[key](lang) for _, key in durations)
            panels.append(Panel(PanelType.STAT, f"{names} ({_today(lang)})", targets,
                                unit="s", time_from=TODAY, reduce="sum", no_value="0",
                                width=8, height=5,
                                description=DESCRIPTIONS["sampled_time"](lang)))
    return panels


def ratio(equipment: EquipmentInfo, numerator: SensorInfo, denominator: SensorInfo, *,
          title: str, lang: Lang, expression: str, unit: str, description: str) -> Panel:
    """Today's ratio of two counters' increases (`expression` over $A and $B).

    InfluxQL cannot divide one series by another, so Grafana's server-side math does, point by
    point: both operands are one spread over the same range, hence one point at the same time.
    Per-interval ratios are left out on purpose: counters polled at different periods leave
    different intervals empty, and a ratio of misaligned increases is wrong (the evaluation
    dashboard gives daily ratios, from rollups).
    """
    site = equipment.site
    today: list[Target | Expression] = [
        Target(query.counter_spread(site=site, sensor=numerator.id)),
        Target(query.counter_spread(site=site, sensor=denominator.id)),
        Expression(expression)]
    return Panel(PanelType.STAT, f"{title} ({_today(lang)})", today, unit=unit, decimals=2,
                 time_from=TODAY, width=8, hidden_refs=frozenset({"A", "B"}),
                 description=description)


def _today(lang: Lang) -> str:
    return TITLES["today"](lang)
