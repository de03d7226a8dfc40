"""Grafana as code: dashboards generated from the gateway configurations, and their upload.

`build_dashboards(config_dir, lang)` reads every gateway configuration and returns, per site,
an overview, one dashboard per machine (by the roles of its sensors and its kind), an
evaluation dashboard (from the api's rollups) and a fleet page. `write_dashboards` writes them
for Grafana's file provider (dashboards/provisioning/); `push_dashboards` uploads them.
"""

from dashboards.build import (
    build_dashboards,
    render,
    site_dashboards,
    stale_files,
    write_dashboards,
)
from dashboards.dashboard import Dashboard, Section
from dashboards.inventory import EquipmentInfo, SensorInfo, SiteInfo, load_sites, sites_of
from dashboards.labels import Lang
from dashboards.panel import DATASOURCE_UID, Expression, Panel, PanelType, Target
from dashboards.push import Pushed, PushError, push_dashboards

__all__ = [
    "DATASOURCE_UID",
    "Dashboard",
    "EquipmentInfo",
    "Expression",
    "Lang",
    "Panel",
    "PanelType",
    "PushError",
    "Pushed",
    "Section",
    "SensorInfo",
    "SiteInfo",
    "Target",
    "build_dashboards",
    "load_sites",
    "push_dashboards",
    "render",
    "site_dashboards",
    "sites_of",
    "stale_files",
    "write_dashboards",
]
