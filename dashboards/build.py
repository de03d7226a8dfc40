"""All the dashboards of the configured sites, and their files for Grafana's file provider."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from dashboards.dashboard import Dashboard
from dashboards.evaluation import evaluation_dashboard
from dashboards.fleet import fleet_dashboard, prometheus_fleet_dashboard
from dashboards.inventory import SiteInfo, load_sites
from dashboards.labels import Lang
from dashboards.machine import machine_dashboard
from dashboards.overview import overview_dashboard


def site_dashboards(site: SiteInfo, lang: Lang) -> list[Dashboard]:
    """Overview, one per machine, evaluation and fleet (InfluxDB, Prometheus), for one site."""
    return [overview_dashboard(site, lang),
            *(machine_dashboard(e, lang) for e in site.equipment),
            evaluation_dashboard(site, lang),
            fleet_dashboard(site, lang),
            prometheus_fleet_dashboard(site, lang)]


def build_dashboards(config_dir: Path, lang: Lang = Lang.FR) -> list[Dashboard]:
    """Every dashboard of every site configured under `config_dir`."""
    return [d for site in load_sites(config_dir) for d in site_dashboards(site, lang)]


def render(dashboard: Dashboard) -> str:
    """The file content: stable (sorted keys) so that a rebuild without change is no diff."""
    return json.dumps(dashboard.to_json(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def dashboard_path(out_dir: Path, dashboard: Dashboard) -> Path:
    # One sub-folder per site: the provider (foldersFromFilesStructure) makes it a folder.
    return out_dir / dashboard.site / f"{dashboard.uid}.json"


def write_dashboards(dashboards: Iterable[Dashboard], out_dir: Path) -> list[Path]:
    """Write the dashboards and remove generated files that no dashboard claims any more."""
    written = []
    for dashboard in dashboards:
        path = dashboard_path(out_dir, dashboard)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(dashboard), encoding="utf-8")
        written.append(path)
    for stale in set(out_dir.glob("*/dynamo-*.json")) - set(written):
        stale.unlink()
    return written


def stale_files(dashboards: Sequence[Dashboard], out_dir: Path) -> list[Path]:
    """Generated files that differ from, lack or outlive what `dashboards` would write."""
    expected = {dashboard_path(out_dir, d): render(d) for d in dashboards}
    out = [path for path, text in expected.items()
           if not path.is_file() or path.read_text(encoding="utf-8") != text]
    out += sorted(set(out_dir.glob("*/dynamo-*.json")) - set(expected))
    return out
