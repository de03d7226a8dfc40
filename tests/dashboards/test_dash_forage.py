"""Stored hay on the dryer's dashboard: one trend per bale probe, named by where the probe is,
with the agricultural scale's lines, in French and in English."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboards import Lang, PanelType, Target
from dashboards.inventory import equipment_of
from dashboards.labels import TITLES
from dashboards.machine import machine_dashboard
from telemetry.loader import load_gateway_config

REPO = Path(__file__).resolve().parents[2]
SITES = REPO / "firmware-config" / "sites"


CONFIG = load_gateway_config(SITES / "ariege" / "dryer.yaml")


def _probes() -> dict[str, str]:
    return {s.id: s.location for d in CONFIG.devices for s in d.sensors
            if s.role == "forage_temperature"}


@pytest.mark.parametrize(("lang", "label"), [(Lang.FR, "Température du foin stocké"),
                                             (Lang.EN, "Stored hay temperature")])
def test_every_probe_has_its_own_trend_named_by_its_location(lang: Lang, label: str) -> None:
    [equipment] = equipment_of(CONFIG)
    dryer = machine_dashboard(equipment, lang)
    [section] = [s for s in dryer.sections if s.title == TITLES["stored_hay"](lang)]
    [trend] = [p for p in section.panels if p.type is PanelType.TIMESERIES]
    probes = _probes()
    assert len(probes) >= 3
    # One query per probe, each on its own sensor, aliased by its location.
    targets = {t.alias: t.query for t in trend.targets if isinstance(t, Target)}
    assert len(targets) == len(trend.targets)
    assert sorted(targets) == sorted(f"{label} ({where})" for where in probes.values())
    for sensor, where in probes.items():
        assert f"'{sensor}'" in targets[f"{label} ({where})"]
    # 40 / 60 / 80 °C: watch, danger, call the fire brigade.
    assert [(t.value, t.color) for t in trend.thresholds] == [
        (40.0, "orange"), (60.0, "red"), (80.0, "dark-red")]
    rendered = trend.to_json(panel_id=1, x=0, y=0)
    assert rendered["fieldConfig"]["defaults"]["unit"] == "celsius"
    assert rendered["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"] == {"mode": "line"}
    assert "18" in trend.description
    [latest] = [p for p in section.panels if p.type is PanelType.STAT]
    assert len(latest.targets) == len(probes)
