"""Every register of a three-phase meter can be recorded: electrical-quality roles, the generic
`measurement` roles, and the checks that still hold for them (unit parsed, dimension, phase)."""

from __future__ import annotations

from pathlib import Path

import pytest

from telemetry.errors import ConfigError
from telemetry.loader import load_gateway_config
from telemetry.roles import ENERGY_ROLES, ROLES
from telemetry.units import same_dimension

REPO = Path(__file__).resolve().parents[2]

# Each point of the shipped SDM630 template, with the role a user would give it.
SDM630_SENSORS = """\
      - {id: m.v1, point: voltage_l1_v, role: voltage, attributes: {phase: L1}}
      - {id: m.v2, point: voltage_l2_v, role: voltage, attributes: {phase: L2}}
      - {id: m.v3, point: voltage_l3_v, role: voltage, attributes: {phase: L3}}
      - {id: m.i1, point: current_l1_a, role: current, attributes: {phase: L1}}
      - {id: m.i2, point: current_l2_a, role: current, attributes: {phase: L2}}
      - {id: m.i3, point: current_l3_a, role: current, attributes: {phase: L3}}
      - {id: m.p1, point: power_l1_w, role: phase_power, attributes: {phase: L1}}
      - {id: m.p2, point: power_l2_w, role: phase_power, attributes: {phase: L2}}
      - {id: m.p3, point: power_l3_w, role: phase_power, attributes: {phase: L3}}
      - {id: m.p, point: total_power_w, role: electric_power}
      - {id: m.f, point: frequency_hz, role: frequency}
      - {id: m.imp, point: import_energy_kwh, role: grid_import_energy}
      - {id: m.exp, point: export_energy_kwh, role: grid_export_energy}
      - {id: m.tot, point: total_energy_kwh, role: measurement_total}
"""

CONFIG = f"""\
template_dirs: [{REPO / "firmware-config" / "templates"}, local]
site: test-site
gateway: test-gw
equipment:
  - {{id: dryer, kind: dryer}}
devices:
  - id: meter
    template: eastron-sdm630
    equipment: dryer
    connection: {{type: tcp, host: 127.0.0.1, port: 5020}}
    sensors:
{SDM630_SENSORS}"""

LOCAL_TEMPLATE = """\
model: test-quality
maker: Test
source: test fixture
points:
  - {key: pf, register_type: input, address: 0, data_type: float32, unit: ""}
  - {key: q_var, register_type: input, address: 2, data_type: float32, unit: kvar}
  - {key: q_kvarh, register_type: input, address: 4, data_type: float32, unit: kvarh}
  - {key: s_va, register_type: input, address: 6, data_type: float32, unit: kVA}
  - {key: thd_v, register_type: input, address: 8, data_type: float32, unit: "%"}
  - {key: pressure, register_type: input, address: 10, data_type: float32, unit: bar}
  - {key: hours, register_type: input, address: 12, data_type: uint32, unit: h}
"""


def _load(tmp_path: Path, sensors: str, *, template: str = "eastron-sdm630") -> object:
    (tmp_path / "local").mkdir(exist_ok=True)
    (tmp_path / "local" / "test-quality.yaml").write_text(LOCAL_TEMPLATE)
    text = CONFIG.replace("template: eastron-sdm630", f"template: {template}")
    text = text.replace(SDM630_SENSORS, sensors)
    file = tmp_path / "gateway.yaml"
    file.write_text(text)
    return load_gateway_config(file)


def test_every_sdm630_register_has_a_role(tmp_path: Path) -> None:
    config = _load(tmp_path, SDM630_SENSORS)
    template_keys = {p.key for p in config.templates["eastron-sdm630"].points}  # type: ignore[attr-defined]
    used = {line.split("point: ")[1].split(",")[0] for line in SDM630_SENSORS.splitlines()}
    assert template_keys == used


def test_quality_and_generic_roles_take_their_units(tmp_path: Path) -> None:
    sensors = """\
      - {id: q.pf, point: pf, role: power_factor}
      - {id: q.q, point: q_var, role: reactive_power}
      - {id: q.e, point: q_kvarh, role: reactive_energy}
      - {id: q.s, point: s_va, role: apparent_power}
      - {id: q.thd, point: thd_v, role: voltage_thd, attributes: {phase: L1-L2}}
      - {id: q.p, point: pressure, role: measurement}
      - {id: q.h, point: hours, role: measurement_total}
"""
    _load(tmp_path, sensors, template="test-quality")


@pytest.mark.parametrize(("sensor", "path", "words"), [
    # a reactive-energy counter is not an active-energy one: kvarh and kWh differ in dimension
    ("{id: q.e, point: q_kvarh, role: electric_energy}", "sensors[0].role", "measures 'kWh'"),
    ("{id: q.q, point: q_var, role: electric_power}", "sensors[0].role", "measures 'W'"),
    ("{id: q.v, point: pressure, role: voltage}", "sensors[0].role", "measures 'V'"),
    ("{id: q.t, point: thd_v, role: voltage_thd, attributes: {phase: L4}}",
     "sensors[0].attributes.phase", "is not one of"),
    ("{id: q.t, point: thd_v, role: current_thd, attributes: {phase: l1}}",
     "sensors[0].attributes.phase", "is not one of"),
])
def test_wrong_units_and_phases_are_refused(tmp_path: Path, sensor: str, path: str,
                                            words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, f"      - {sensor}\n", template="test-quality")
    by_path = {i.path: i.message for i in caught.value.issues}
    assert words in by_path[f"devices[0].{path}"], by_path


def test_a_generic_role_still_needs_a_real_unit(tmp_path: Path) -> None:
    bad = LOCAL_TEMPLATE.replace("unit: bar", "unit: barz")
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "test-quality.yaml").write_text(bad)
    file = tmp_path / "gateway.yaml"
    one = "      - {id: q.p, point: pressure, role: measurement}\n"
    file.write_text(CONFIG.replace("template: eastron-sdm630", "template: test-quality")
                    .replace(SDM630_SENSORS, one))
    with pytest.raises(ConfigError, match="barz"):
        load_gateway_config(file)


def test_reactive_roles_never_count_as_energy() -> None:
    assert "reactive_energy" not in ENERGY_ROLES
    assert not same_dimension("kvarh", "kWh") and not same_dimension("var", "W")
    assert same_dimension("kvar", "VAr") and same_dimension("MVArh", "kvarh")
    assert ROLES["measurement"].any_unit and not ROLES["voltage"].any_unit
