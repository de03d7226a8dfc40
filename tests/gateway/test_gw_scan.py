"""Bus discovery against the simulators (TCP and a serial pseudo-terminal) and against devices
that answer nothing: who answers, which template fits, and a fragment the loader accepts."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dynamo.cli import main
from gateway.scan import Setting, parse_units, scan, serial_settings
from simulators import PtyPair, RunningSimulators, run_in_thread
from telemetry.errors import ConfigError
from telemetry.loader import load_gateway_config, load_templates
from telemetry.template import DeviceTemplate

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "firmware-config" / "templates"


@pytest.fixture(scope="module")
def freezer() -> Iterator[RunningSimulators]:
    sims = run_in_thread(machines=("freezer",), speed=60.0, seed=11)
    yield sims
    sims.stop()


@pytest.fixture(scope="module")
def library() -> dict[str, DeviceTemplate]:
    return load_templates(TEMPLATES)


@pytest.fixture
def silent_tcp() -> Iterator[int]:
    """A TCP listener that accepts and never answers: a device that says nothing."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    server.close()


def test_every_configured_device_is_found_and_identified(
        freezer: RunningSimulators, library: dict[str, DeviceTemplate]) -> None:
    config = freezer.gateway_config("freezer")
    configured = {d.unit_id: d.template for d in config.devices}
    report = asyncio.run(scan([Setting(host="127.0.0.1", port=freezer.ports["freezer"])],
                              range(1, 9), library, timeout_s=0.3, time_limit_s=30))
    found = {r.unit_id: r for r in report.responders}
    # ids 6-8 get exception 0x0B from the simulator's gateway side: nobody is there
    assert set(found) == set(configured), found
    for unit, template in configured.items():
        responder = found[unit]
        assert responder.identification["vendor"] == "DYNAMO project (simulator)"
        if library[template].fingerprint:
            # the configured model is the tightest fit (most checks held)
            assert responder.model == template, (unit, responder.matches)
        else:
            assert template not in {m.model for m in responder.matches}
    assert report.attempts == 8 and not report.untried


def test_the_cli_prints_a_fragment_the_loader_accepts(freezer: RunningSimulators,
                                                       tmp_path: Path) -> None:
    port = freezer.ports["freezer"]
    result = CliRunner().invoke(main, ["modbus", "scan", "--tcp", f"127.0.0.1:{port}",
                                       "--units", "1-5", "--equipment", "freezer"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    fragment_text = "\n".join(lines[lines.index(next(x for x in lines if x.startswith("#"))):])
    fragment = yaml.safe_load(fragment_text)
    assert {d["unit_id"] for d in fragment["devices"]} == {1, 2, 3, 5}  # 4 fits no template
    assert "unit 4" in result.output and "no template fits" in result.output
    site = {"template_dirs": [str(TEMPLATES)], "site": "scan-site", "gateway": "scan-gw",
            "equipment": [{"id": "freezer", "kind": "freezer"}], **fragment}
    file = tmp_path / "gateway.yaml"
    file.write_text(yaml.safe_dump(site, sort_keys=False))
    loaded = load_gateway_config(file)
    meter = next(d for d in loaded.devices if d.unit_id == 1)
    roles = {s.point: s.role for s in meter.sensors}
    assert roles["import_energy_kwh"] == "measurement_total"
    assert roles["frequency_hz"] == "measurement"


def test_serial_line_found_at_the_first_setting_that_answers(tmp_path: Path) -> None:
    with PtyPair(tmp_path / "tty") as pair:
        sims = run_in_thread(machines=("freezer",), serial_ports={"freezer": pair.server_end},
                             baudrate=19200, speed=60.0, seed=5)
        try:
            library = load_templates(TEMPLATES)
            settings = serial_settings(pair.client_end, (19200, 9600), ("N", "E"))
            report = asyncio.run(scan(settings, [1, 3, 9], library, timeout_s=0.3,
                                      time_limit_s=30))
        finally:
            sims.stop()
    assert {r.unit_id for r in report.responders} == {1, 3}
    assert {r.model for r in report.responders} == {"eastron-sdm630", "carel-ir33"}
    # a bus has one speed: once 19200 8N1 answered, the other settings were not tried
    assert {r.setting for r in report.responders} == {settings[0]}
    assert report.attempts == 3
    assert report.responders[0].setting.connection() == {
        "type": "rtu", "port": pair.client_end, "baudrate": 19200, "parity": "N"}


def test_a_device_that_answers_nothing_is_reported_within_the_time_bound(
        silent_tcp: int, library: dict[str, DeviceTemplate]) -> None:
    started = time.monotonic()
    result = CliRunner().invoke(main, ["modbus", "scan", "--tcp", f"127.0.0.1:{silent_tcp}",
                                       "--units", "1-247", "--timeout", "0.1",
                                       "--time-limit", "3"])
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert "0 responder(s)" in result.output
    assert "not tried (time limit)" in result.output  # the bound cut the 247 ids short
    # one unanswered id costs two probes of at most 2 x 0.1 + 1 s each (the wait_for bound),
    # so the scan may overrun its limit by one id: 3 s + 2.4 s, plus start-up
    assert elapsed < 10, elapsed


def test_a_silent_serial_line(tmp_path: Path, library: dict[str, DeviceTemplate]) -> None:
    with PtyPair(tmp_path / "tty") as pair:
        report = asyncio.run(scan(serial_settings(pair.client_end, (9600,), ("N",)),
                                  [1, 2], library, timeout_s=0.1, time_limit_s=10))
    assert report.responders == [] and report.attempts == 2


@pytest.mark.parametrize(("text", "units"), [
    ("1-3,7", [1, 2, 3, 7]), ("247", [247]), ("5,1-2,2", [5, 1, 2])])
def test_unit_ranges(text: str, units: list[int]) -> None:
    assert parse_units(text) == units


@pytest.mark.parametrize("text", ["0", "1-248", "3-1", "a", ","])
def test_bad_unit_ranges(text: str) -> None:
    with pytest.raises(ValueError):
        parse_units(text)


@pytest.mark.parametrize(("check", "words"), [
    ("{point: nope, min: 0}", "names no numeric point"),
    ("{point: temp_c, min: 5, max: 1}", "above `max`"),
    ("{point: temp_c}", "needs `min`, `max`"),
    # int16 in tenths spans -3276.8..3276.7: a check any register value passes tells nothing
    ("{point: temp_c, min: -4000, max: 4000}", "tell nothing"),
])
def test_fingerprints_that_cannot_tell_models_apart_are_refused(tmp_path: Path, check: str,
                                                                words: str) -> None:
    (tmp_path / "t.yaml").write_text(
        "model: probe\nsource: test\n"
        f"fingerprint:\n  - {check}\n"
        "points:\n  - {key: temp_c, register_type: holding, address: 0, data_type: int16,"
        " scale: 0.1, unit: degC}\n")
    with pytest.raises(ConfigError, match=words):
        load_templates(tmp_path)
