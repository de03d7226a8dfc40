"""Raspberry Pi deployment: the offline bundle, the systemd unit, the watchdog handshake."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable
from email.parser import Parser
from pathlib import Path
from zipfile import ZipFile

import pytest
from gwkit import REPO, ModbusTestServer, broker_settings, float_words, meter_device, write_config

from dynamo.devservices import MosquittoProcess
from gateway.bundle import PLATFORMS, core_requirements

PI = REPO / "firmware-config" / "pi"


def _pypi_reachable() -> bool:
    try:
        with urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=10) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _name(requirement: str) -> str:
    for stop in "<>=!~[; ":
        requirement = requirement.split(stop)[0]
    return requirement.lower().replace("-", "_")


@pytest.mark.skipif(not _pypi_reachable(), reason="PyPI unreachable: cannot build a wheelhouse")
def test_the_aarch64_bundle_holds_everything_a_pi_needs_offline(tmp_path: Path) -> None:
    out = tmp_path / "usb"
    run = subprocess.run([sys.executable, "-m", "dynamo", "gateway", "bundle", "--platform",
                          "aarch64", "--out", str(out)], capture_output=True, text=True,
                         timeout=600, check=False)
    assert run.returncode == 0, run.stderr
    wheels = sorted((out / "wheels").glob("*.whl"))
    names = {w.name.split("-")[0].lower() for w in wheels}
    assert "dynamo_monitoring" in names
    assert {_name(r) for r in core_requirements()} <= names
    # Binary wheels are for the Pi, never for the machine that built the bundle.
    binary = [w.name for w in wheels if not w.name.endswith("-none-any.whl")]
    assert binary and all("aarch64" in w and "cp311" in w for w in binary), binary
    assert any(w.startswith("pydantic_core-") for w in binary)
    assert not names & SERVER_ONLY, names  # the server extras stay off the Pi
    # The project's wheel carries the gateway and the command line.
    [own] = [w for w in wheels if w.name.startswith("dynamo_monitoring-")]
    with ZipFile(own) as archive:
        members = set(archive.namelist())
        metadata = next(m for m in members if m.endswith(".dist-info/METADATA"))
        assert Parser().parsestr(archive.read(metadata).decode())["Name"] == "dynamo-monitoring"
    assert {"gateway/agent.py", "gateway/spool.py", "dynamo/cli.py"} <= members
    # Installer and unit travel with it; the manifest's checksums match.
    assert os.stat(out / "install.sh").st_mode & stat.S_IXUSR
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["platform"] == "aarch64" and manifest["python"] == "3.11"
    provisioning = {"install.sh", "dynamo-gateway.service", "dynamo-alerts-edge.service",
                    "dynamo-upgrade-guard.service", "dynamo-upgrade-guard.timer",
                    "journald-dynamo.conf", "gateway.env.example"}
    assert set(manifest["files"]) - {f"wheels/{w.name}" for w in wheels} == provisioning
    # pip, offline and with no configuration of this machine, resolves the whole install
    # from the bundle alone for an aarch64 CPython 3.11.
    platform_args = [a for tag in PLATFORMS["aarch64"] for a in ("--platform", tag)]
    resolve = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
         "--no-index", "--find-links", str(out / "wheels"), "--only-binary=:all:",
         *platform_args, "--python-version", "3.11", "--implementation", "cp",
         "--target", str(tmp_path / "target"), "dynamo-monitoring"],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
    assert resolve.returncode == 0, resolve.stderr[-2000:]
    assert "Would install" in resolve.stdout


SERVER_ONLY = {"fastapi", "uvicorn", "starlette", "influxdb_client", "sqlalchemy", "pyarrow",
               "orjson", "msgspec", "psycopg", "httpx", "jinja2", "pydantic_settings"}


@pytest.mark.skipif(not _pypi_reachable(), reason="PyPI unreachable: cannot build a wheelhouse")
def test_the_armv7l_bundle_needs_no_piwheels(tmp_path: Path) -> None:
    """PyPI has no armv7l wheel of PyYAML nor of cffi: the bundle carries a pure-Python PyYAML
    wheel built here and Debian's armhf `_cffi_backend`, and no other index is used."""
    out = tmp_path / "usb"
    # PyPI alone: neither this machine's pip configuration nor its local wheel folders.
    env = {**{k: v for k, v in os.environ.items() if k != "PIP_FIND_LINKS"},
           "PIP_CONFIG_FILE": os.devnull}
    run = subprocess.run([sys.executable, "-m", "dynamo", "gateway", "bundle", "--platform",
                          "armv7l", "--out", str(out)], capture_output=True, text=True,
                         timeout=600, check=False, env=env)
    assert run.returncode == 0, run.stderr
    wheels = sorted(w.name for w in (out / "wheels").glob("*.whl"))
    names = {w.split("-")[0].lower() for w in wheels}
    # Everything the gateway needs, except cffi, which comes from the .deb; nothing server-side.
    assert {_name(r) for r in core_requirements()} <= names
    assert "cffi" not in names and not names & SERVER_ONLY, names
    binary = [w for w in wheels if not w.endswith("-none-any.whl")]
    assert binary and all("armv7l" in w for w in binary), binary
    assert {w.split("-")[0] for w in binary} == {"pydantic_core", "cryptography"}, binary
    [pyyaml] = [w for w in wheels if w.startswith("pyyaml-")]
    assert pyyaml.endswith("-py3-none-any.whl")
    with ZipFile(out / "wheels" / pyyaml) as archive:
        assert not [m for m in archive.namelist() if m.endswith(".so")]
        assert "yaml/__init__.py" in archive.namelist()
    # The .deb: Debian's armhf build of the one compiled module, pinned by its SHA-256.
    manifest = json.loads((out / "manifest.json").read_text())
    [module] = manifest["debian_modules"]
    assert module["provides"] == "cffi"
    assert module["module"].endswith("_cffi_backend.cpython-311-arm-linux-gnueabihf.so")
    assert module["deb"] == "debs/python3-cffi-backend_1.15.1-5+b1_armhf.deb"
    assert manifest["files"][module["deb"]] == (
        "64b6808b72098da2215d54199871252663692201d8416bebdf6464af5b86e37c")
    listing = subprocess.run(["dpkg-deb", "--contents", str(out / module["deb"])],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    assert "./" + module["module"] in listing


def test_an_armv7l_bundle_for_another_python_is_refused(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "dynamo", "gateway", "bundle", "--platform",
                          "armv7l", "--python", "3.12", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 1 and "Python 3.11, not 3.12" in run.stderr, run.stderr


def test_an_unknown_platform_is_refused_with_the_choices() -> None:
    run = subprocess.run([sys.executable, "-m", "dynamo", "gateway", "bundle", "--platform",
                          "x86", "--out", "/nonexistent"], capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.returncode == 2 and "aarch64" in run.stderr and "armv7l" in run.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("name,directives", [
    ("dynamo-gateway.service", ("Restart=always", "Type=notify", "WatchdogSec=",
                                "StateDirectory=", "ReadWritePaths=/opt/dynamo/releases",
                                "upgrade-guard.py /opt/dynamo/releases")),
    ("dynamo-upgrade-guard.service", ("Type=oneshot", "--restart-unit dynamo-gateway")),
    ("dynamo-alerts-edge.service", ("Restart=always", "StateDirectory=",
                                    "SupplementaryGroups=gammu",
                                    "ReadWritePaths=/var/spool/gammu")),
])
def test_the_systemd_units_verify(tmp_path: Path, name: str, directives: tuple[str, ...]) -> None:
    dynamo = Path(sys.executable).with_name("dynamo")
    unit = tmp_path / name
    unit.write_text((PI / name).read_text()
                    .replace("/opt/dynamo/releases/current/venv/bin/dynamo", str(dynamo))
                    .replace("/opt/dynamo/venv/bin/dynamo", str(dynamo)))
    run = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    text = unit.read_text()
    for directive in directives:
        assert directive in text


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="no shellcheck")
def test_the_installer_passes_shellcheck() -> None:
    run = subprocess.run(["shellcheck", str(PI / "install.sh")], capture_output=True,
                         text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stdout


def test_the_gateway_tells_systemd_it_is_ready_and_alive(
        tmp_path: Path, mosquitto: MosquittoProcess,
        modbus_server: Callable[..., ModbusTestServer]) -> None:
    meter = modbus_server()
    meter.set_registers("input", 72, float_words(1.0))
    config = write_config(tmp_path / "gw.yaml", site=f"s{uuid.uuid4().hex[:10]}",
                          broker=broker_settings(mosquitto, "test-gw"),
                          spool_dir=tmp_path / "spool", devices=[meter_device(meter)])
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(30)
        # systemd's environment for Type=notify with WatchdogSec=0.6s: ping every 0.2 s.
        env = {**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "600000"}
        process = subprocess.Popen([sys.executable, "-m", "dynamo", "gateway", "run",
                                    "--config", str(config)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            messages = []
            while sum(m == "WATCHDOG=1" for m in messages) < 3:
                messages.append(sock.recv(4096).decode())
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert messages[0] == "READY=1"
    assert any(m.startswith("STATUS=spool ") for m in messages)
