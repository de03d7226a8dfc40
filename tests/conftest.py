"""Real services for the suite: an influxd and a mosquitto of our own, on free loopback ports."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dynamo.devservices import InfluxdProcess, MosquittoProcess
from telemetry.influx.client import InfluxClient
from telemetry.site import Broker

REPO = Path(__file__).resolve().parents[1]
FIRMWARE_CONFIG = REPO / "firmware-config"
BROKER_USERS = ("collector", "api", "alerting", "dryer-gw", "freezer-gw", "packaging-gw",
                "test-gw")


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxdProcess]:
    process = InfluxdProcess(workdir=tmp_path_factory.mktemp("influxd"))
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoProcess]:
    users = {user: secrets.token_urlsafe(12) for user in BROKER_USERS}
    process = MosquittoProcess(workdir=tmp_path_factory.mktemp("mosquitto"), users=users,
                               acl_file=FIRMWARE_CONFIG / "broker" / "acl")
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
