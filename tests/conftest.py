"""Real services for the suite: an influxd and a mosquitto of our own, on free loopback ports."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dynamo.devservices import InfluxdProcess, MosquittoProcess, generated_acl
from telemetry.influx.client import InfluxClient
from telemetry.site import Broker

REPO = Path(__file__).resolve().parents[1]
FIRMWARE_CONFIG = REPO / "firmware-config"
BROKER_USERS = ("collector", "api", "alerting", "dryer-gw", "freezer-gw", "packaging-gw",
                "test-gw")
# The suite's synthetic gateway publishes under throwaway site ids (one per test, so tests never
# see each other's data): the generated ACL gives it its prefix on every site, development only.
# The Ariège gateways get exactly what production gives them (firmware-config/broker/acl).
DEVELOPMENT_GATEWAYS = ("test-gw",)


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxdProcess]:
    process = InfluxdProcess(workdir=tmp_path_factory.mktemp("influxd"))
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoProcess]:
    users = {user: secrets.token_urlsafe(12) for user in BROKER_USERS}
    workdir = tmp_path_factory.mktemp("mosquitto")
    acl = generated_acl(workdir, sites=FIRMWARE_CONFIG / "sites",
                        development_gateways=DEVELOPMENT_GATEWAYS)
    process = MosquittoProcess(workdir=workdir, users=users, acl_file=acl)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def broker_for(mosquitto: MosquittoProcess) -> Callable[[str], Broker]:
    """Broker settings for one of the suite's users."""

    def make(user: str) -> Broker:
        return Broker(host=mosquitto.host, port=mosquitto.port, username=user,
                      password=mosquitto.users[user])

    return make


@pytest.fixture
def influx(influxd: InfluxdProcess) -> Iterator[InfluxClient]:
    """A client on a fresh database of its own, so tests never see each other's points."""
    client = InfluxClient(url=influxd.url, database=f"t_{uuid.uuid4().hex[:12]}")
    client.create_database()
    yield client
    client.close()


def write_gateway_config(directory: Path, *, site: str, gateway: str,
                         username: str | None = None, extra_sensors: str = "") -> Path:
    """A small valid gateway configuration, `{directory}/{site}/{gateway}.yaml`: equipment
    `dryer`, device `meter` (an Eastron SDM630) with sensors `dryer.power` (W) and
    `dryer.energy` (kWh); `extra_sensors`: more sensor lines of that device, YAML flow maps."""
    path = directory / site / f"{gateway}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"template_dirs: [{FIRMWARE_CONFIG / 'templates'}]\n"
        f"site: {site}\ngateway: {gateway}\n"
        f"broker: {{username: {username or gateway}}}\n"
        "equipment:\n  - {id: dryer, kind: dryer}\n"
        "devices:\n  - id: meter\n    template: eastron-sdm630\n    equipment: dryer\n"
        "    connection: {type: tcp, host: 127.0.0.1, port: 1502}\n    sensors:\n"
        "      - {id: dryer.power, point: total_power_w, role: grid_power}\n"
        "      - {id: dryer.energy, point: import_energy_kwh, role: grid_import_energy}\n"
        + "".join(f"      - {line}\n" for line in extra_sensors.splitlines() if line.strip()))
    return path


@pytest.fixture(scope="session")
def gateway_config() -> Callable[..., Path]:
    """`write_gateway_config`, for tests that need site configurations of their own."""
    return write_gateway_config
