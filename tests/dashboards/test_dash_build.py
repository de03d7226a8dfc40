"""Dashboards come from the configurations: every sensor shown, by role, in both languages."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dashboards import (
    EquipmentInfo,
    Lang,
    PanelType,
    SensorInfo,
    SiteInfo,
    build_dashboards,
    site_dashboards,
    stale_files,
)
from dashboards.labels import ROLE_LABELS
from dashboards.machine import dashboard_uid, machine_dashboard
from dynamo.cli import main
from telemetry.loader import load_gateway_config
from telemetry.roles import ROLES
from telemetry.site import EquipmentKind

REPO = Path(__file__).resolve().parents[2]
SITES = REPO / "firmware-config" / "sites"
GENERATED = REPO / "dashboards" / "generated"


def _queries(dashboard_panels: list[object]) -> str:
    return "\n".join(t.query for p in dashboard_panels for t in p.queries)  # type: ignore[attr-defined]


def test_committed_dashboards_are_up_to_date() -> None:
    stale = stale_files(build_dashboards(SITES, Lang.FR), GENERATED)
    assert not stale, f"run `dynamo dashboards build` and commit: {stale}"


def test_every_configured_sensor_is_on_its_machines_dashboard() -> None:
    dashboards = {d.uid: d for d in build_dashboards(SITES, Lang.FR)}
    checked = 0
    for file in sorted((SITES / "ariege").glob("*.yaml")):
        config = load_gateway_config(file)
        for device in config.devices:
            queries = _queries(dashboards[dashboard_uid(config.site, device.equipment)].panels)
            for sensor in device.sensors:
                assert f"'{sensor.id}'" in queries, sensor.id
                checked += 1
    assert checked >= 40


def test_each_site_gets_overview_machines_evaluation_and_fleet() -> None:
    uids = [d.uid for d in build_dashboards(SITES, Lang.FR)]
    assert uids == ["dynamo-ariege-overview", "dynamo-ariege-dryer", "dynamo-ariege-freezer",
                    "dynamo-ariege-packaging", "dynamo-ariege-evaluation", "dynamo-ariege-fleet",
                    "dynamo-ariege-fleet-prometheus"]


def test_freezer_shows_the_minus_18_line_on_core_temperatures() -> None:
    [freezer] = [d for d in build_dashboards(SITES, Lang.FR) if d.uid.endswith("freezer")]
    [panel] = [p for p in freezer.panels if p.type is PanelType.TIMESERIES
               and "product_core_temp" in _queries([p])]
    assert [t.value for t in panel.thresholds] == [-18.0]
    rendered = panel.to_json(panel_id=1, x=0, y=0)
    assert rendered["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"] == {"mode": "line"}
    assert rendered["fieldConfig"]["defaults"]["unit"] == "celsius"


def test_english_titles_replace_every_french_one() -> None:
    french = build_dashboards(SITES, Lang.FR)
    english = build_dashboards(SITES, Lang.EN)
    pairs = [(text(f), text(e)) for fd, ed in zip(french, english, strict=True)
             for f, e in zip(fd.panels, ed.panels, strict=True)
             for text in (lambda p: p.title, lambda p: p.description, lambda p: p.content)]
    pairs += [(fd.title, ed.title) for fd, ed in zip(french, english, strict=True)]
    same = [f for f, e in pairs if f == e and f]
    assert not same, same
    assert any(e.title.startswith("Overview") for e in english)
    # The queries do not depend on the language.
    assert [_queries(d.panels) for d in french] == [_queries(d.panels) for d in english]


def test_every_role_has_an_operator_label() -> None:
    assert set(ROLE_LABELS) == set(ROLES)


def _sensor(sensor_id: str, role: str, unit: str) -> SensorInfo:
    return SensorInfo(id=sensor_id, role=role, unit=unit, poll_interval_s=10)


def test_equipment_of_an_unknown_kind_shows_all_its_sensors() -> None:
    kiln = EquipmentInfo(site="tarn", gateway="kiln-gw", id="kiln", kind=EquipmentKind.OTHER,
                         name="", timezone="Europe/Paris", sensors=(
                             _sensor("kiln.energy", "electric_energy", "kWh"),
                             _sensor("kiln.power", "electric_power", "W"),
                             _sensor("kiln.door", "door_open", "")))
    dashboard = machine_dashboard(kiln, Lang.FR)
    queries = _queries(dashboard.panels)
    assert all(f"'{s.id}'" in queries for s in kiln.sensors)
    kinds = {p.type for p in dashboard.panels}
    assert {PanelType.BARS, PanelType.TIMESERIES, PanelType.STATE_TIMELINE} <= kinds


def test_sensors_in_other_units_are_converted_to_the_panels_unit() -> None:
    dryer = EquipmentInfo(site="tarn", gateway="gw", id="dryer", kind=EquipmentKind.DRYER,
                          name="", timezone="Europe/Paris", sensors=(
                              _sensor("d.in", "inlet_air_temp", "degC"),
                              _sensor("d.out", "outlet_air_temp", "degF"),
                              _sensor("d.pv", "pv_energy", "kWh"),
                              _sensor("d.grid", "grid_import_energy", "Wh")))
    queries = _queries(machine_dashboard(dryer, Lang.FR).panels).splitlines()
    [fahrenheit] = [q for q in queries if "'d.out'" in q and "mean(" in q]
    assert 'mean("value") * 0.555555555556 - 17.7777777778' in fahrenheit
    [watt_hours] = [q for q in queries if "'d.grid'" in q and "spread(" in q]
    assert 'spread("value") * 0.001 FROM' in watt_hours


def test_long_identifiers_give_uids_grafana_accepts() -> None:
    site = SiteInfo(id="communaute-de-communes-du-pays-de-mirepoix", timezone="Europe/Paris",
                    gateways=("gw",), equipment=(EquipmentInfo(
                        site="communaute-de-communes-du-pays-de-mirepoix", gateway="gw",
                        id="sechoir-a-luzerne-numero-deux", kind=EquipmentKind.DRYER, name="",
                        timezone="Europe/Paris",
                        sensors=(_sensor("s.t", "inlet_air_temp", "degC"),)),))
    uids = [d.uid for d in site_dashboards(site, Lang.FR)]
    assert all(len(uid) <= 40 for uid in uids)
    assert len(set(uids)) == len(uids)


def test_cli_builds_english_and_checks_freshness(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["dashboards", "build", "--config-dir", str(SITES),
                                  "--out", str(tmp_path), "--lang", "en"])
    assert result.exit_code == 0, result.output
    files = sorted(tmp_path.glob("ariege/*.json"))
    assert len(files) == 7  # overview, 3 machines, evaluation, fleet (InfluxDB, Prometheus)
    overview = json.loads((tmp_path / "ariege" / "dynamo-ariege-overview.json").read_text())
    assert overview["title"] == "Overview — ariege"
    check = ["dashboards", "build", "--config-dir", str(SITES), "--out", str(tmp_path),
             "--lang", "en", "--check"]
    assert runner.invoke(main, check).exit_code == 0
    files[0].write_text("{}")
    (tmp_path / "ariege" / "dynamo-ariege-gone.json").write_text("{}")
    result = runner.invoke(main, check)
    assert result.exit_code == 1
    assert files[0].name in result.output and "dynamo-ariege-gone.json" in result.output


def test_cli_lists_configuration_errors_and_builds_nothing(tmp_path: Path) -> None:
    text = (SITES / "ariege" / "freezer.yaml").read_text()
    text = text.replace("template_dirs: [../../templates]",
                        f"template_dirs: [{REPO / 'firmware-config' / 'templates'}]")
    text = text.replace("role: door_open", "role: door_opened")
    (tmp_path / "sites" / "ariege").mkdir(parents=True)
    (tmp_path / "sites" / "ariege" / "freezer.yaml").write_text(text)
    result = CliRunner().invoke(main, ["dashboards", "build", "--config-dir",
                                       str(tmp_path / "sites"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "unknown role 'door_opened'" in result.output
    assert not (tmp_path / "out").exists()


def test_layout_groups_hold_roles_of_one_kind() -> None:
    # A group is drawn as its first role's kind dictates: a mixed group would hide sensors.
    from dashboards.machine import LAYOUTS, Group

    groups = [item for sections in LAYOUTS.values() for _, items in sections
              for item in items if isinstance(item, Group)]
    assert groups
    for group in groups:
        assert all(r in ROLES for r in group.roles), group
        assert len({ROLES[r].kind for r in group.roles}) == 1, group
