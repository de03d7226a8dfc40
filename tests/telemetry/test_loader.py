"""A wrong configuration is refused with every error, each with its file, path and line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from telemetry.errors import ConfigError
from telemetry.loader import load_gateway_config

TEMPLATE = """\
model: test-meter
maker: Test
source: test fixture
points:
  - {key: energy_kwh, register_type: input, address: 72, data_type: float32, unit: kWh}
  - {key: power_w, register_type: input, address: 52, data_type: float32, unit: W}
"""

GOOD = """\
template_dirs: [templates]
site: test-site
gateway: test-gw
equipment:
  - {id: dryer, kind: dryer}
devices:
  - id: meter
    template: test-meter
    equipment: dryer
    connection: {type: tcp, host: 127.0.0.1, port: ${TEST_PORT:-5020}}
    sensors:
      - {id: dryer.energy, point: energy_kwh, role: grid_import_energy}
      - {id: dryer.power, point: power_w, role: fan_power}
"""

BAD = """\
template_dirs: [templates]
site: test-site
gateway: test-gw
equipment:
  - {id: dryer, kind: dryer}
devices:
  - id: meter
    template: test-meter
    equipment: dryre
    connection: {type: tcp, host: 127.0.0.1, port: 70000}
    sensors:
      - {id: dryer.energy, point: energy_kwh, role: grid_import_energie}
      - {id: dryer.power, point: power_w, role: grid_import_energy}
  - id: other
    template: no-such-model
    equipment: dryer
    sensors:
      - {id: dryer.x, point: x, role: fan_power}
"""


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "test-meter.yaml").write_text(TEMPLATE)
    file = tmp_path / "gateway.yaml"
    file.write_text(text)
    return file


def test_good_configuration_loads_with_environment(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PORT", "15999")
    config = load_gateway_config(_write(tmp_path, GOOD))
    device = config.devices[0]
    assert device.connection is not None and device.connection.port == 15999  # type: ignore[union-attr]
    assert config.point_of(device, device.sensors[0]).unit == "kWh"


def test_schema_errors_are_all_listed_with_their_place(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_gateway_config(_write(tmp_path, BAD))
    issues = {(i.path, i.line) for i in caught.value.issues}
    assert ("devices[0].connection.tcp.port", 10) in issues
    assert all(i.file.endswith("gateway.yaml") for i in caught.value.issues)


def test_cross_reference_errors_are_all_listed(tmp_path: Path) -> None:
    fixed_port = BAD.replace("port: 70000", "port: 502")
    with pytest.raises(ConfigError) as caught:
        load_gateway_config(_write(tmp_path, fixed_port))
    by_path = {i.path: i for i in caught.value.issues}
    assert "unknown equipment 'dryre'" in by_path["devices[0].equipment"].message
    assert by_path["devices[0].equipment"].line == 9
    assert "unknown role 'grid_import_energie'" in by_path["devices[0].sensors[0].role"].message
    assert "measures 'kWh'" in by_path["devices[0].sensors[1].role"].message
    assert "unknown template 'no-such-model'" in by_path["devices[1].template"].message
    assert len(caught.value.issues) == 4


def test_invalid_yaml_and_missing_variables(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_gateway_config(_write(tmp_path, "site: [unclosed\n"))
    with pytest.raises(ConfigError, match="NO_SUCH_VARIABLE is not set"):
        load_gateway_config(_write(tmp_path, GOOD.replace("${TEST_PORT:-5020}",
                                                          "${NO_SUCH_VARIABLE}")))


def test_cli_check_prints_every_error_and_fails(tmp_path: Path) -> None:
    file = _write(tmp_path, BAD.replace("port: 70000", "port: 502"))
    result = subprocess.run([sys.executable, "-m", "dynamo", "config", "check", str(file)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "4 error(s)" in result.stderr
    assert f"{file}:9: devices[0].equipment" in result.stderr


def test_cli_check_reports_the_request_plan(tmp_path: Path) -> None:
    file = _write(tmp_path, GOOD)
    result = subprocess.run([sys.executable, "-m", "dynamo", "config", "check", str(file)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    # energy at 72-73 and power at 52-53 are 18 registers apart: two requests with max_gap 10
    assert "meter (test-meter): 2 point(s) in 2 request(s)" in result.stdout
