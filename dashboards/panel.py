"""Panels and their queries as small typed values, rendered to Grafana's dashboard JSON.

grafana-foundation-sdk has no InfluxDB query builder and grafanalib is barely maintained, so
the few panel types the dashboards use are plain dataclasses with a `to_json`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dashboards.labels import Label, Lang

DATASOURCE_UID = "dynamo-influxdb"  # dashboards/provisioning/datasources/influxdb.yaml
DATASOURCE: dict[str, str] = {"type": "influxdb", "uid": DATASOURCE_UID}
PROMETHEUS_UID = "dynamo-prometheus"  # dashboards/provisioning/datasources/prometheus.yaml
PROMETHEUS: dict[str, str] = {"type": "prometheus", "uid": PROMETHEUS_UID}
EXPRESSION_DATASOURCE: dict[str, str] = {"type": "__expr__", "uid": "__expr__"}

# Grafana's unit ids for the unit symbols the configurations use; others show their symbol.
_GRAFANA_UNITS = {
    "degC": "celsius", "percent": "percent", "%": "percent", "W": "watt", "kW": "kwatt",
    "Wh": "watth", "kWh": "kwatth", "MWh": "mwatth", "bar": "pressurebar", "ppm": "ppm",
    "m**3/h": "flowcmh", "m**3": "m3", "L": "litre", "kg": "masskg", "t": "masst", "s": "s",
    "W/m**2": "suffix: W/m²", "units": "none", "units/min": "suffix: u/min",
}


def grafana_unit(symbol: str) -> str:
    """Grafana's unit id for a unit symbol of the configuration."""
    return _GRAFANA_UNITS.get(symbol, f"suffix: {symbol}" if symbol else "none")


class PanelType(StrEnum):
    TIMESERIES = "timeseries"
    BARS = "bars"  # a timeseries drawn as bars (energy per interval)
    STAT = "stat"
    STATE_TIMELINE = "state-timeline"
    TABLE = "table"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Target:
    """One InfluxQL query of a panel.

    `sparse` marks queries of events a healthy system may not have in the period (failed
    readings, alerts, placeholders of rollups not produced yet): an empty answer is right.
    """

    query: str
    alias: str = ""
    table: bool = False
    sparse: bool = False

    def to_json(self, ref_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "refId": ref_id, "datasource": DATASOURCE, "rawQuery": True, "query": self.query,
            "resultFormat": "table" if self.table else "time_series",
        }
        if self.alias:
            out["alias"] = self.alias
        return out


@dataclass(frozen=True, slots=True)
class PromTarget:
    """One PromQL query of a panel, on the services' metrics (docs/operations.md)."""

    expr: str
    legend: str = ""
    instant: bool = False

    def to_json(self, ref_id: str) -> dict[str, Any]:
        return {"refId": ref_id, "datasource": PROMETHEUS, "expr": self.expr,
                "legendFormat": self.legend or "__auto", "range": not self.instant,
                "instant": self.instant, "editorMode": "code"}


@dataclass(frozen=True, slots=True)
class Expression:
    """A Grafana server-side math expression over the other targets (`$A / $B * 1000`)."""

    expression: str

    def to_json(self, ref_id: str) -> dict[str, Any]:
        return {"refId": ref_id, "datasource": EXPRESSION_DATASOURCE, "type": "math",
                "expression": self.expression, "hide": False}


@dataclass(frozen=True, slots=True)
class Threshold:
    value: float
    color: str = "red"


@dataclass(frozen=True, slots=True)
class Panel:
    """A panel; its position is given by the dashboard's layout."""

    type: PanelType
    title: str
    targets: Sequence[Target | Expression | PromTarget] = ()
    description: str = ""
    unit: str = ""
    width: int = 12
    height: int = 8
    thresholds: Sequence[Threshold] = ()
    # code -> (text, color) for state panels
    mappings: Mapping[int, tuple[str, str]] = field(default_factory=dict)
    decimals: int | None = None
    time_from: str | None = None  # e.g. "now/d": today, in the dashboard's time zone
    transformations: Sequence[dict[str, Any]] = ()
    hidden_refs: frozenset[str] = frozenset()  # targets computed for an expression only
    content: str = ""  # markdown of a text panel
    reduce: str = "lastNotNull"  # how a stat panel reduces a series to one number
    no_value: str | None = None  # what to show when the queries return nothing
    stacked: bool = False  # series of a timeseries drawn on top of each other

    @property
    def queries(self) -> list[Target]:
        return [t for t in self.targets if isinstance(t, Target)]

    def to_json(self, *, panel_id: int, x: int, y: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": panel_id,
            "type": "timeseries" if self.type is PanelType.BARS else self.type.value,
            "title": self.title,
            "gridPos": {"x": x, "y": y, "w": self.width, "h": self.height},
        }
        if self.description:
            out["description"] = self.description
        if self.type is PanelType.TEXT:
            out["options"] = {"mode": "markdown", "content": self.content}
            return out
        out["datasource"] = PROMETHEUS if self.targets and all(
            isinstance(t, PromTarget) for t in self.targets) else DATASOURCE
        targets = []
        for index, target in enumerate(self.targets):
            ref_id = chr(ord("A") + index)
            rendered = target.to_json(ref_id)
            if ref_id in self.hidden_refs:
                rendered["hide"] = True
            targets.append(rendered)
        out["targets"] = targets
        out["fieldConfig"] = {"defaults": self._defaults(), "overrides": []}
        out["options"] = self._options()
        if self.time_from:
            out["timeFrom"] = self.time_from
        if self.transformations:
            out["transformations"] = list(self.transformations)
        return out

    def _defaults(self) -> dict[str, Any]:
        steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
        steps += [{"color": t.color, "value": t.value} for t in self.thresholds]
        defaults: dict[str, Any] = {
            "unit": self.unit or "none",
            "thresholds": {"mode": "absolute", "steps": steps},
            "color": {"mode": "thresholds" if self.type is PanelType.STAT else "palette-classic"},
        }
        if self.decimals is not None:
            defaults["decimals"] = self.decimals
        if self.no_value is not None:
            defaults["noValue"] = self.no_value
        if self.mappings:
            defaults["mappings"] = [{"type": "value", "options": {
                str(code): {"text": text, "color": color, "index": index}
                for index, (code, (text, color)) in enumerate(sorted(self.mappings.items()))}}]
            defaults["color"] = {"mode": "thresholds"}
        if self.type in (PanelType.TIMESERIES, PanelType.BARS):
            bars = self.type is PanelType.BARS
            defaults["custom"] = {
                "drawStyle": "bars" if bars else "line", "lineWidth": 1,
                "fillOpacity": 60 if bars else 10, "showPoints": "never", "spanNulls": False,
                "thresholdsStyle": {"mode": "line" if self.thresholds else "off"},
            }
            if self.stacked:
                defaults["custom"]["stacking"] = {"mode": "normal", "group": "A"}
        return defaults

    def _options(self) -> dict[str, Any]:
        if self.type is PanelType.STAT:
            return {"reduceOptions": {"calcs": [self.reduce], "fields": "", "values": False},
                    "colorMode": "value", "graphMode": "none", "textMode": "auto",
                    "orientation": "auto", "justifyMode": "auto"}
        if self.type is PanelType.STATE_TIMELINE:
            return {"showValue": "auto", "mergeValues": True, "rowHeight": 0.9,
                    "legend": {"showLegend": True, "displayMode": "list", "placement": "bottom"}}
        if self.type is PanelType.TABLE:
            return {"showHeader": True, "cellHeight": "sm"}
        return {"legend": {"showLegend": True, "displayMode": "list", "placement": "bottom"},
                "tooltip": {"mode": "multi", "sort": "none"}}


def state_mappings(texts: Mapping[int, tuple[Label, str]], lang: Lang
                   ) -> dict[int, tuple[str, str]]:
    """Value mappings of a state role in one language."""
    return {code: (label(lang), color) for code, (label, color) in texts.items()}
