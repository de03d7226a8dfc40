"""The shipped device templates, each read by the gateway's poller from a real pymodbus server
answering its recorded register image (tests/telemetry/cases/templates/<model>/case.yaml), and
the scale-factor / "not implemented" rules SunSpec needs.

A case's image is what the device answers (a maker's example frame where the manual has one,
otherwise constructed from the documented encoding, the arithmetic written beside each value);
its expected values are physical quantities written out independently of the decoder.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from gwkit import TEMPLATES, ModbusTestServer, write_config
from pydantic import ValidationError
from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType as SimDataType
from pymodbus.simulator import SimData, SimDevice

from gateway.plan import plan_reads, with_scale_factors
from gateway.poller import DevicePoller, PollResult
from gateway.reading import make_reading
from gateway.scan import Setting, scan
from simulators import MODELS
from simulators.clock import SITE_TIMEZONE, SimClock
from simulators.server import (
    MachineServer,
    _fill_registers,
    _fitting_exponent,
    _Slot,
    encode_point,
)
from simulators.simulation import Simulation
from telemetry.datatypes import DataType
from telemetry.errors import ConfigError
from telemetry.loader import load_gateway_config, load_templates
from telemetry.payload import Quality
from telemetry.registers import decode_registers
from telemetry.roles import ENERGY_ROLES
from telemetry.site import (
    Broker,
    Device,
    Equipment,
    EquipmentKind,
    GatewayConfig,
    Sensor,
    TcpConnection,
)
from telemetry.template import DeviceTemplate, RegisterPoint

REPO = Path(__file__).resolve().parents[2]
CASES = sorted((REPO / "tests" / "telemetry" / "cases" / "templates").glob("*/case.yaml"))
SOURCES = REPO / "docs" / "sources.md"
SIMULATED = re.compile(r"^dynamo-sim-")
# Models whose registers another, fuller model also reads: the scan proposes that one.
SHARED_MAPS = {"eastron-sdm120": "eastron-sdm630"}


_TABLE_OF_FUNCTION = {1: "coil", 2: "discrete_input", 3: "holding", 4: "input"}
_SIM_ORDER = ("coil", "discrete_input", "holding", "input")  # SimDevice's table order


class ImageServer(ModbusTestServer):
    """A test server that answers recorded register images at their real addresses (meters
    live at 3000, SunSpec at 40000: beyond gwkit's 200-register tables). A table the case
    does not list answers "illegal function", a register outside its image "illegal address",
    as a device would."""

    def __init__(self, *, images: dict[str, dict[int, int]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.images = images

    def _block(self, table: str) -> list[SimData]:
        image = self.images.get(table)
        if table in ("coil", "discrete_input"):
            # Bits are packed 16 to a register (bit 0 first); cover the image's registers.
            last = max(image or {0: 0}) // 16 + 1
            return [SimData(address=0, values=[False] * 16 * last, datatype=SimDataType.BITS)]
        if not image:
            return [SimData(address=0, count=1, values=0, datatype=SimDataType.REGISTERS)]
        first, end = min(image), max(image) + 1
        return [SimData(address=first, count=end - first, values=0,
                        datatype=SimDataType.REGISTERS)]

    def _device(self) -> SimDevice:
        coil, discrete, holding, registers = (self._block(table) for table in _SIM_ORDER)
        return SimDevice(id=self.unit_id, simdata=(coil, discrete, holding, registers),
                         action=self._action)

    async def _action(self, function_code: int, start_address: int, _address: int,
                      _count: int, registers: list[int], set_values: Any) -> ExcCodes | None:
        self.requests += 1
        table = _TABLE_OF_FUNCTION.get(function_code)
        if table not in self.images or set_values is not None:
            return ExcCodes.ILLEGAL_FUNCTION
        image = self.images[table]
        for i in range(len(registers)):
            if table in ("coil", "discrete_input"):
                base = (start_address + i) * 16
                registers[i] = sum(1 << b for b in range(16) if image.get(base + b, 0))
            else:
                registers[i] = image.get(start_address + i, 0)
        return None


def _images(case: dict[str, Any]) -> dict[str, dict[int, int]]:
    """Table -> address -> word (or bit), from a case's `images:` (a list of words or bits
    per starting address)."""
    images: dict[str, dict[int, int]] = {}
    for table, blocks in case["images"].items():
        words = images.setdefault(table, {})
        for address, values in blocks.items():
            for i, word in enumerate(values):
                words[int(address) + i] = int(word)
    return images


@pytest.fixture
def image_server() -> Iterator[Callable[..., ImageServer]]:
    servers: list[ImageServer] = []

    def make(**kwargs: Any) -> ImageServer:
        server = ImageServer(**kwargs)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def _poll(template: DeviceTemplate, keys: list[str], port: int) -> tuple[PollResult, int]:
    """One poll of a device of `template` with a `measurement` sensor on each of `keys`."""
    device = Device(id="dev", template=template.model, equipment="rig",
                    connection=TcpConnection(type="tcp", host="127.0.0.1", port=port),
                    unit_id=1, timeout_s=2.0, retries=1,
                    sensors=tuple(Sensor(id=f"rig.{key}", point=key, role="measurement")
                                  for key in keys))
    config = GatewayConfig(site="test", gateway="test-gw",
                           equipment=(Equipment(id="rig", kind=EquipmentKind("other")),),
                           devices=(device,),
                           templates={template.model: template})

    async def poll() -> tuple[PollResult, int]:
        poller = DevicePoller(config=config, device=device)
        try:
            return await poller.poll(), len(poller.requests)
        finally:
            await poller.close()

    return asyncio.run(poll())


@pytest.fixture(scope="module")
def templates() -> dict[str, DeviceTemplate]:
    return load_templates(TEMPLATES)


@pytest.mark.parametrize("file", CASES, ids=[c.parent.name for c in CASES])
def test_recorded_response_decodes_to_the_documented_values(
        file: Path, templates: dict[str, DeviceTemplate],
        image_server: Callable[..., ImageServer]) -> None:
    case = yaml.safe_load(file.read_text())
    template = templates[case["template"]]
    server = image_server(images=_images(case))
    expected: dict[str, float] = case["expected"]
    bad: dict[str, str] = case.get("bad", {})
    result, _ = _poll(template, [*expected, *bad], server.port)
    readings = {r.sensor.removeprefix("rig."): r for r in result.readings}
    for key, value in expected.items():
        reading = readings[key]
        assert reading.quality is Quality.GOOD, (key, reading.reason)
        assert reading.value == pytest.approx(value, rel=1e-6, abs=1e-9), key
    for key, reason in bad.items():
        assert readings[key].quality is Quality.BAD and readings[key].value is None, key
        assert readings[key].reason == reason, key


def test_every_shipped_template_loads_and_cites_its_source(
        templates: dict[str, DeviceTemplate]) -> None:
    sources = SOURCES.read_text()
    section = sources.split("## Device register maps", 1)[1].split("\n## ", 1)[0]
    anchors = set(re.findall(r"\{#([a-z0-9-]+)\}", sources))
    for file in sorted(TEMPLATES.glob("*.yaml")):
        text = file.read_text()
        model = yaml.safe_load(text)["model"]
        assert templates[model].source.strip(), f"{file.name}: empty `source:`"
        assert file.name in section, f"{file.name} is not in docs/sources.md register maps"
        cited = re.findall(r"docs/sources\.md#([a-z0-9-]+)", text)
        assert all(a in anchors for a in cited), (file.name, cited)
        if not SIMULATED.match(model):
            assert templates[model].maker, file.name
    # Every shipped device template has its recorded-response case.
    cased = {c.parent.name for c in CASES}
    assert cased == {m for m in templates if not SIMULATED.match(m)}, cased
    # The templates of issue 16 item 8: an anchor of their own, a fingerprint, a case.
    for model, anchor in (("schneider-iem3000", "schneider-iem3000"),
                          ("sunspec-inverter", "sunspec"), ("sunspec-inverter-l65", "sunspec"),
                          ("aquametro-calec-st", "aquametro-calec-st"),
                          ("dixell-xr60cx", "dixell-xr60cx"), ("vaisala-hmt330", "vaisala-hmt330")):
        assert f"{{#{anchor}}}" in section, model
        assert f"docs/sources.md#{anchor}" in templates[model].source, model
        assert templates[model].fingerprint, model
        assert any(c.parent.name == model for c in CASES), model


def test_sunspec_reads_values_and_scale_factors_in_one_request(
        templates: dict[str, DeviceTemplate],
        image_server: Callable[..., ImageServer]) -> None:
    """Only W is a sensor: its scale factor is read anyway, in the same request."""
    template = templates["sunspec-inverter"]
    # W 1234 × 10^-1 = 123.4 W
    server = image_server(images={"holding": {40084: 1234, 40085: 0xFFFF}})
    result, requests = _poll(template, ["ac_power_w"], server.port)
    assert requests == 1
    assert result.raw["power_sf"] == -1
    assert result.readings[0].value == pytest.approx(123.4)
    power = template.point("ac_power_w")
    assert isinstance(power, RegisterPoint)
    planned = plan_reads(with_scale_factors([power], template))
    assert [p.key for r in planned for p in r.points] == ["ac_power_w", "power_sf"]


def _point(**kwargs: Any) -> RegisterPoint:
    return RegisterPoint(**{"register_type": "holding", **kwargs})


def _template(*points: RegisterPoint) -> DeviceTemplate:
    return DeviceTemplate(model="sf-rig", points=points)


def test_scale_factor_must_name_an_int16_point_of_the_same_table() -> None:
    value = _point(key="w", address=0, data_type="int16", scale_factor="w_sf")
    with pytest.raises(ValidationError, match="no point of this model"):
        _template(value)
    with pytest.raises(ValidationError, match="must be an int16"):
        _template(value, _point(key="w_sf", address=1, data_type="uint16"))
    with pytest.raises(ValidationError, match="another table"):
        _template(value, _point(key="w_sf", register_type="input", address=1,
                                data_type="int16"))
    with pytest.raises(ValidationError, match="not a value of uint16"):
        _point(key="a", address=0, data_type="uint16", not_implemented=-32768)
    with pytest.raises(ValidationError, match="only for numeric"):
        _point(key="s", address=0, data_type="string", length=2, scale_factor="x")
    assert _template(value, _point(key="w_sf", address=1, data_type="int16"))
    with pytest.raises(ValidationError, match="cannot have a scale_factor"):
        DeviceTemplate(model="sf-rig", points=(value, _point(key="w_sf", address=1,
                                                               data_type="int16")),
                       fingerprint=({"point": "w", "min": 0, "max": 10},))  # type: ignore[arg-type]


@pytest.mark.parametrize(("raw", "reason"), [
    ({"w": 5, "w_sf": 11}, "scale factor 11 out of range"),
    ({"w": 5, "w_sf": -11}, "scale factor -11 out of range"),
    ({"w": 5}, "scale factor not read"),
    ({"w": -32768, "w_sf": 0}, "not implemented"),
    ({"w": 5, "w_sf": -32768}, "not implemented"),
])
def test_unusable_scale_factors_give_bad_readings(raw: dict[str, float], reason: str) -> None:
    point = _point(key="w", address=0, data_type="int16", scale_factor="w_sf",
                   not_implemented=-32768)
    sensor = Sensor(id="rig.w", point="w", role="measurement")
    reading = make_reading(sensor, point, dict(raw), {})
    assert reading.quality is Quality.BAD and reading.value is None
    assert reading.reason == reason


def test_scale_factor_and_point_scale_compose() -> None:
    # raw 250 × 10^2 × scale 0.001 = 25.0 (e.g. W, SF +2, shown in kW); then + offset 1 = 26.0
    point = _point(key="w", address=0, data_type="int16", scale_factor="w_sf", scale=0.001,
                   offset=1.0)
    reading = make_reading(Sensor(id="rig.w", point="w", role="measurement"), point,
                           {"w": 250, "w_sf": 2}, {})
    assert reading.value == pytest.approx(26.0)


def test_simulator_encodes_with_the_scale_factor_register() -> None:
    """simulators/server.py serves a SunSpec value as raw = physical / 10^SF."""
    value = _point(key="hz", address=0, data_type="uint16", scale_factor="hz_sf")
    factor = _point(key="hz_sf", address=1, data_type="int16")
    # 50.01 Hz at SF -2: raw 5001; SF -2 as int16 = 0xFFFE
    assert encode_point(value, 50.01, -2) == [5001]
    registers = [0, 0]
    slots = [_Slot(value, lambda _v: 50.01), _Slot(factor, lambda _v: -2.0)]
    _fill_registers(slots, 0, registers, {})
    assert registers == [5001, 0xFFFE]
    assert decode_registers([registers[1]], data_type=DataType.INT16) == -2
    # A 36 kW inverter's int16 power: 36 000 at 10^0 is above 32 767, 3 600 at 10^1 fits.
    watts = _point(key="w", address=0, data_type="int16", scale_factor="w_sf")
    assert _fitting_exponent([(watts, lambda _v: 36_000.0)])({}) == 1
    # 12.34 A in uint16 fits at the finest exponent tried, 10^-2 (1 234 raw).
    amps = _point(key="a", address=1, data_type="uint16", scale_factor="w_sf")
    assert _fitting_exponent([(amps, lambda _v: 12.34)])({}) == -2
    # One factor for both: the coarser need wins.
    assert _fitting_exponent([(watts, lambda _v: 36_000.0), (amps, lambda _v: 12.34)])({}) == 1


def test_new_templates_take_their_indicator_roles(tmp_path: Path) -> None:
    """A site records the new devices under indicator roles: the loader checks each point's
    unit against its role's dimension (kW for heat_power, Wh for pv_energy, varh for
    reactive_energy…), so a wrong pairing would be refused here."""
    def device(name: str, template: str, unit_id: int,
               sensors: dict[str, str]) -> dict[str, Any]:
        return {"id": name, "template": template, "equipment": "rig", "unit_id": unit_id,
                "connection": {"type": "tcp", "host": "127.0.0.1", "port": 1502},
                "sensors": [{"id": f"rig.{name}.{point}", "point": point, "role": role,
                             **({"attributes": {"phase": "L1"}} if role == "voltage" else {})}
                            for point, role in sensors.items()]}

    devices = [
        device("meter", "schneider-iem3000", 1, {
            "import_energy_wh": "electric_energy", "total_power_kw": "electric_power",
            "voltage_l1_v": "voltage", "reactive_import_varh": "reactive_energy",
            "apparent_power_kva": "apparent_power", "frequency_hz": "frequency"}),
        device("heat", "aquametro-calec-st", 2, {
            "heat_energy_kwh": "heat_energy", "power_kw": "heat_power",
            "flow_temp_c": "flow_temp", "return_temp_c": "return_temp",
            "flow_m3h": "volume_flow", "volume_m3": "measurement_total"}),
        device("cold", "dixell-xr60cx", 3, {
            "probe1_temp_c": "cabinet_air_temp", "probe2_temp_c": "evaporator_temp"}),
        device("pv", "sunspec-inverter", 4, {
            "ac_energy_wh": "pv_energy", "ac_power_w": "pv_power"}),
        device("air", "vaisala-hmt330", 5, {
            "relative_humidity": "inlet_air_humidity", "temperature": "inlet_air_temp"}),
    ]
    path = write_config(tmp_path / "gw.yaml", broker=Broker(), spool_dir=tmp_path / "spool",
                        devices=devices)
    config = load_gateway_config(path)
    assert len(config.devices) == 5
    # …and a heat energy counter is an energy counter for the api (docs/roles.md).
    assert "heat_energy" in ENERGY_ROLES
    # The same heat power point under a temperature role is refused.
    devices[1]["sensors"][1]["role"] = "flow_temp"
    with pytest.raises(ConfigError, match=r"role flow_temp measures 'degC' but sensor "
                                          r"rig\.heat\.power_kw is in 'kW'"):
        load_gateway_config(write_config(tmp_path / "bad.yaml", broker=Broker(),
                                         spool_dir=tmp_path / "spool", devices=devices))


def test_the_simulator_serves_a_sunspec_inverter_the_poller_reads(
        templates: dict[str, DeviceTemplate]) -> None:
    """simulators/server.py serves the SunSpec template from the dryer's PV truth, each scale
    factor the finest power of ten (from 10^-2) at which its values fit their registers, and
    the poller, reading values and scale factors, gets the truth back."""
    template = templates["sunspec-inverter"]
    # A sunny June noon, the clock frozen so that the truth holds still between reads.
    model = MODELS["dryer"](seed=5, start=datetime(2025, 6, 10, 12, 0, tzinfo=SITE_TIMEZONE))
    simulation = Simulation(model, clock=SimClock(wall=lambda: 1_000_000.0))
    truth = simulation.advance()
    sensors = {"ac_power_w": "pv_power", "ac_energy_wh": "pv_energy", "voltage_l1_v": "voltage",
               "frequency_hz": "frequency"}

    async def serve_and_poll() -> tuple[PollResult, int]:
        device = Device(id="pv", template=template.model, equipment="rig", unit_id=3,
                        connection=TcpConnection(type="tcp", host="127.0.0.1", port=1),
                        timeout_s=2.0,
                        sensors=tuple(Sensor(id=f"rig.{k}", point=k, role=r,
                                             attributes={"phase": "L1"} if r == "voltage" else {})
                                      for k, r in sensors.items()))
        config = GatewayConfig(site="test", gateway="test-gw",
                               equipment=(Equipment(id="rig", kind=EquipmentKind("other")),),
                               devices=(device,), templates={template.model: template})
        server = MachineServer(simulation, config)
        port = await server.start_tcp(host="127.0.0.1", port=0)
        served = device.model_copy(update={"connection": TcpConnection(
            type="tcp", host="127.0.0.1", port=port)})
        config = config.model_copy(update={"devices": (served,)})
        poller = DevicePoller(config=config, device=served)
        try:
            return await poller.poll(), len(poller.requests)
        finally:
            await poller.close()
            await server.stop()

    result, requests = asyncio.run(serve_and_poll())
    assert result.health == "ok" and requests == 1
    # W is int16 (≤ 32 767 raw); e.g. 18 789 W: 10^-2 → 1 878 943 and 10^-1 → 187 894 do not
    # fit, 10^0 → 18 789 does.
    power_sf = int(result.raw["power_sf"])
    assert power_sf == next(e for e in range(-2, 11)
                            if round(truth["pv_power_w"] / 10 ** e) <= 32_767)
    readings = {r.sensor.removeprefix("rig."): r for r in result.readings}
    assert readings["ac_power_w"].value == pytest.approx(truth["pv_power_w"],
                                                         abs=10 ** power_sf / 2)
    # WH is acc32 (≤ 4 294 967 295 raw): 300-500 kWh = 3e5-5e5 Wh fits at 10^-2 (5e7 raw).
    energy_sf = int(result.raw["energy_sf"])
    assert energy_sf == -2
    assert readings["ac_energy_wh"].value == pytest.approx(truth["pv_energy_kwh"] * 1000,
                                                           abs=10 ** energy_sf / 2)
    # 230 V and 50 Hz (simulators/feeder.py) at the finest exponent uint16 allows: 10^-2
    # (23 000 and 5 000 raw).
    assert (result.raw["voltage_sf"], result.raw["frequency_sf"]) == (-2, -2)
    assert readings["voltage_l1_v"].value == pytest.approx(230.0)
    assert readings["frequency_hz"].value == pytest.approx(50.0)


@pytest.mark.parametrize("file", CASES, ids=[c.parent.name for c in CASES])
def test_bus_scan_takes_each_recorded_device_for_its_model(
        file: Path, templates: dict[str, DeviceTemplate],
        image_server: Callable[..., ImageServer]) -> None:
    """`dynamo modbus scan` proposes the case's model for its image, and only it: the
    fingerprints tell the shipped devices apart (a template without fingerprint is never
    proposed, and nothing else may be taken for it)."""
    case = yaml.safe_load(file.read_text())
    expected = case["template"] if templates[case["template"]].fingerprint else None
    server = image_server(images=_images(case))
    report = asyncio.run(scan([Setting(host="127.0.0.1", port=server.port)], [1], templates,
                              timeout_s=1.0, time_limit_s=30.0))
    assert [r.unit_id for r in report.responders] == [1]
    matches = report.responders[0].matches
    if expected is None:
        assert not matches
        return
    assert expected in [m.model for m in matches]
    # An SDM120 answers the SDM630's L2/L3 voltage registers with zeros, which an open phase
    # also shows: the scan proposes the SDM630 and prints the SDM120 beside it (docs/gateway.md,
    # "read the label").
    assert report.responders[0].model == SHARED_MAPS.get(expected, expected), matches
