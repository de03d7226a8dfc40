"""A dashboard: rows of panels, variables and annotations, laid out and rendered to JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dashboards.panel import DATASOURCE, Panel

SCHEMA_VERSION = 39  # Grafana 11's dashboard schema
GRID_WIDTH = 24
TAG = "dynamo"  # every generated dashboard carries it; the dashboards' links use it


@dataclass(frozen=True, slots=True)
class Section:
    """A titled row of panels."""

    title: str
    panels: Sequence[Panel]


@dataclass(frozen=True, slots=True)
class CustomVariable:
    """A variable whose values come from the configuration (no metadata query needed)."""

    name: str
    label: str
    values: Sequence[str]
    multi: bool = True

    def to_json(self) -> dict[str, Any]:
        options = [{"text": v, "value": v, "selected": True} for v in self.values]
        return {
            "type": "custom", "name": self.name, "label": self.label,
            "query": ",".join(self.values), "multi": self.multi, "includeAll": self.multi,
            "current": {"text": ["All"], "value": ["$__all"]} if self.multi
            else {"text": self.values[0], "value": self.values[0]},
            "options": options, "hide": 0,
        }


@dataclass(frozen=True, slots=True)
class Annotation:
    """Events drawn on every graph, from an InfluxQL query of `$timeFilter` rows."""

    name: str
    query: str
    text_column: str
    tags_columns: Sequence[str] = ()
    color: str = "red"

    def to_json(self) -> dict[str, Any]:
        # The form Grafana's InfluxDB datasource stores since its annotations became regular
        # queries (the target carries the query; legacy top-level fields are migrated to it).
        target = {"refId": "Anno", "query": self.query, "rawQuery": True,
                  "fromAnnotations": True, "queryType": "tags", "textColumn": self.text_column,
                  "tagsColumn": ",".join(self.tags_columns), "titleColumn": "",
                  "timeEndColumn": ""}
        return {"name": self.name, "datasource": DATASOURCE, "enable": True, "hide": False,
                "iconColor": self.color, "target": target}


@dataclass(frozen=True, slots=True)
class Dashboard:
    uid: str
    title: str
    site: str  # also the output sub-folder, hence the Grafana folder
    sections: Sequence[Section]
    tags: Sequence[str] = ()
    description: str = ""
    timezone: str = "browser"
    time_from: str = "now-6h"
    refresh: str = "30s"
    variables: Sequence[CustomVariable] = ()
    annotations: Sequence[Annotation] = ()

    @property
    def panels(self) -> list[Panel]:
        return [p for s in self.sections for p in s.panels]

    def to_json(self) -> dict[str, Any]:
        """The dashboard model Grafana stores (schemaVersion 39), without `id`."""
        panels: list[dict[str, Any]] = []
        next_id = 1
        y = 0
        for section in self.sections:
            panels.append({"id": next_id, "type": "row", "title": section.title,
                           "collapsed": False, "gridPos": {"x": 0, "y": y, "w": GRID_WIDTH,
                                                            "h": 1}, "panels": []})
            next_id += 1
            y += 1
            x, row_height = 0, 0
            for panel in section.panels:
                if x + panel.width > GRID_WIDTH:
                    x, y, row_height = 0, y + row_height, 0
                panels.append(panel.to_json(panel_id=next_id, x=x, y=y))
                next_id += 1
                x += panel.width
                row_height = max(row_height, panel.height)
            y += row_height
        builtin = {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                   "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                   "name": "Annotations & Alerts", "type": "dashboard"}
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": [TAG, self.site, *self.tags],
            "timezone": self.timezone,
            "editable": False,
            "graphTooltip": 1,
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "time": {"from": self.time_from, "to": "now"},
            "refresh": self.refresh,
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "weekStart": "monday",
            "panels": panels,
            "templating": {"list": [v.to_json() for v in self.variables]},
            "annotations": {"list": [builtin, *(a.to_json() for a in self.annotations)]},
            "links": [{"title": "DYNAMO", "type": "dashboards", "tags": [TAG, self.site],
                       "asDropdown": True, "includeVars": False, "keepTime": True,
                       "targetBlank": False, "icon": "external link", "tooltip": "",
                       "url": ""}],
        }
