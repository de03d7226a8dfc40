"""The device templates and the Ariège site configurations: they load, they say what the
makers' documents say, and every sensor of a site is played by its machine's simulator."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulators import MACHINES, MODELS, encode_point, site_config_path
from telemetry.datatypes import ByteOrder, DataType, RegisterType
from telemetry.loader import load_gateway_config, load_templates
from telemetry.registers import decode_registers
from telemetry.roles import ROLES
from telemetry.site import TcpConnection
from telemetry.template import DeviceTemplate, RegisterPoint

pytestmark = pytest.mark.timeout(60)

TEMPLATES = Path(__file__).resolve().parents[2] / "firmware-config" / "templates"


@pytest.fixture(scope="module")
def templates() -> dict[str, DeviceTemplate]:
    return load_templates(TEMPLATES)


def _point(template: DeviceTemplate, key: str) -> RegisterPoint:
    point = template.point(key)
    assert isinstance(point, RegisterPoint), key
    return point


def test_every_template_loads_and_cites_its_source(templates: dict[str, DeviceTemplate]) -> None:
    assert {"eastron-sdm630", "eastron-sdm120", "carlo-gavazzi-em24", "icpdas-m-7017c",
            "carel-ir33"} <= set(templates)
    for model, template in templates.items():
        assert template.source, f"{model} cites no source"
        if model.startswith("dynamo-sim-"):
            assert "simulated PLC" in template.source
        else:
            # The maker and the document's title, quoted.
            assert template.maker in template.source and re.search(r'"[^"]+"', template.source), (
                f"{model}: name the maker's document")
        text = (TEMPLATES / f"{model}.yaml").read_text(encoding="utf-8")
        assert text.lstrip().startswith("#"), f"{model}: cite the document in a comment too"


def test_sdm630_map_matches_the_checked_facts(templates: dict[str, DeviceTemplate]) -> None:
    sdm = templates["eastron-sdm630"]
    expected = {"voltage_l1_v": 0, "voltage_l2_v": 2, "voltage_l3_v": 4, "current_l1_a": 6,
                "current_l2_a": 8, "current_l3_a": 10, "power_l1_w": 12, "power_l2_w": 14,
                "power_l3_w": 16, "total_power_w": 52, "frequency_hz": 70,
                "import_energy_kwh": 72, "export_energy_kwh": 74, "total_energy_kwh": 342}
    for key, address in expected.items():
        point = _point(sdm, key)
        assert (point.address, point.register_type, point.data_type, point.order) == (
            address, RegisterType.INPUT, DataType.FLOAT32, ByteOrder.ABCD), key


def test_em24_is_word_swapped_with_weights(templates: dict[str, DeviceTemplate]) -> None:
    em24 = templates["carlo-gavazzi-em24"]
    energy = _point(em24, "import_energy_kwh")
    assert (energy.address, energy.data_type, energy.order, energy.scale) == (
        0x34, DataType.INT32, ByteOrder.CDAB, 0.1)
    assert _point(em24, "total_power_w").address == 0x28
    assert _point(em24, "export_energy_kwh").address == 0x4E
    assert _point(em24, "current_l1_a").scale == 0.001


def test_sdm120_and_ir33_addresses(templates: dict[str, DeviceTemplate]) -> None:
    sdm120 = templates["eastron-sdm120"]
    assert [_point(sdm120, k).address for k in ("voltage_v", "current_a", "total_power_w",
                                                "frequency_hz", "import_energy_kwh")] == [
        0, 6, 12, 70, 72]
    ir33 = templates["carel-ir33"]
    # Carel's Modbus indices are 1-based: probe 1 is index 4, door status index 37.
    assert _point(ir33, "probe_1_c").address == 3
    assert _point(ir33, "door_open").register_type is RegisterType.COIL
    assert _point(ir33, "door_open").address == 36


@pytest.mark.parametrize("machine", MACHINES)
def test_site_configuration_loads_and_is_complete(machine: str) -> None:
    config = load_gateway_config(site_config_path(machine))
    assert (config.site, config.gateway) == ("ariege", f"{machine}-gw")
    assert [e.id for e in config.equipment] == [machine]
    assert config.broker.username == config.gateway
    unit_ids = [d.unit_id for d in config.devices]
    assert len(unit_ids) == len(set(unit_ids)), "unit ids must be distinct on one server"
    ports = {d.connection.port for d in config.devices if isinstance(d.connection, TcpConnection)}
    assert ports == {15020 + MACHINES.index(machine)}
    roles = {s.role for d in config.devices for s in d.sensors}
    assert roles & {"grid_import_energy", "electric_energy"}
    for device in config.devices:
        assert 2 <= device.poll_interval_s <= 10


def test_site_ports_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNAMO_SIM_HOST", "127.0.0.2")
    monkeypatch.setenv("DYNAMO_FREEZER_SIM_PORT", "25021")
    config = load_gateway_config(site_config_path("freezer"))
    connections = {d.connection for d in config.devices}
    assert connections == {TcpConnection(host="127.0.0.2", port=25021)}


@pytest.mark.parametrize("machine", MACHINES)
def test_every_sensor_is_played_by_the_simulator(machine: str) -> None:
    config = load_gateway_config(site_config_path(machine))
    model = MODELS[machine](seed=0)
    names = set(model.values())
    for device in config.devices:
        for sensor in device.sensors:
            assert sensor.role in ROLES
            variable = model.variable_for(role=sensor.role, attributes=sensor.attributes,
                                          location=sensor.location)
            assert variable in names, f"{sensor.id}: no truth variable for role {sensor.role}"


def test_brief_sensor_ids_exist() -> None:
    wanted = {
        "dryer": {"grid_import_energy", "grid_export_energy", "pv_energy", "solar_heat_energy",
                  "fan_power", "pv_power", "inlet_air_temp", "outlet_air_temp",
                  "inlet_air_humidity", "outlet_air_humidity", "ambient_temp", "airflow",
                  "hay_moisture", "irradiance"},
        "freezer": {"electric_energy", "compressor_power", "cabinet_air_temp",
                    "product_core_temp", "evaporator_pressure", "condenser_pressure",
                    "door_open", "compressor_running", "refrigerant_leak"},
        "packaging": {"electric_energy", "electric_power", "units_packed", "units_rejected",
                      "line_state", "line_speed", "material_consumed", "compressed_air_volume"},
    }
    for machine, roles in wanted.items():
        config = load_gateway_config(site_config_path(machine))
        sensors = [s for d in config.devices for s in d.sensors]
        assert roles <= {s.role for s in sensors}, machine
        assert all(s.id.startswith(f"{machine}.") for s in sensors)
    packaging = load_gateway_config(site_config_path("packaging"))
    materials = {s.attributes.get("material") for d in packaging.devices for s in d.sensors
                 if s.role == "material_consumed"}
    assert materials == {"cardboard", "pla_film"}


def test_docs_list_every_sensor() -> None:
    docs = (TEMPLATES.parents[1] / "docs" / "simulators.md").read_text(encoding="utf-8")
    for machine in MACHINES:
        config = load_gateway_config(site_config_path(machine))
        for device in config.devices:
            assert f"`{device.id}`" in docs
            for sensor in device.sensors:
                assert f"`{sensor.id}`" in docs, f"docs/simulators.md misses {sensor.id}"


def test_encoding_round_trips_through_every_template(
        templates: dict[str, DeviceTemplate]) -> None:
    for template in templates.values():
        for point in template.points:
            value = 1.0 if point.data_type is DataType.BOOL else 12.345  # in range of all
            registers = encode_point(point, value)
            assert len(registers) == (1 if point.register_type.is_bit else point.count)
            if point.register_type.is_bit:
                assert registers == [1]
                continue
            raw = decode_registers(registers, data_type=point.data_type, order=point.order,
                                   bit=point.bit)
            assert not isinstance(raw, str)
            decoded = point.physical(float(raw))
            if point.data_type is DataType.BOOL:
                assert decoded == 1.0
            elif point.data_type in (DataType.FLOAT32, DataType.FLOAT64):
                assert decoded == pytest.approx(value, rel=1e-6)
            else:
                assert abs(decoded - value) <= 0.5 * abs(point.scale) + 1e-9, (
                    f"{template.model}.{point.key}")
