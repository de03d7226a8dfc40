"""The api against real services: influxd and mosquitto from the suite, SQLite or PostgreSQL."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.access.tokens import TokenRole, create_token
from api.app import create_app
from api.settings import ApiSettings
from telemetry.influx.client import InfluxClient
from telemetry.site import Broker

REPO = Path(__file__).resolve().parents[2]
# --import-mode=importlib puts no test folder on sys.path; the case runners share casekit.py,
# and the alert history tests take the alerting tests' recording phone (alertkit.py).
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "alerting"))
# PostgreSQL runs on the development machine; elsewhere point this at one, or the PostgreSQL
# half of the relational tests skips (SQLite always runs).
POSTGRES = os.environ.get("DYNAMO_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_reachable() -> bool:
    try:
        with psycopg.connect(POSTGRES, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'api.sqlite3'}"
        return
    if not _postgres_reachable():
        pytest.skip(f"no PostgreSQL at {POSTGRES} (set DYNAMO_TEST_POSTGRES)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield (POSTGRES.replace("postgresql://", "postgresql+psycopg://", 1)
               + ("&" if "?" in POSTGRES else "?") + f"options=-csearch_path%3D{schema}")
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def api_settings(influx: InfluxClient, broker_for: Callable[[str], Broker],
                 database_url: str) -> ApiSettings:
    broker = broker_for("api")
    return ApiSettings(
        site_configs=REPO / "firmware-config" / "sites", influx_url=influx.url,
        influx_db=influx.database, mqtt_host=broker.host, mqtt_port=broker.port,
        mqtt_username=broker.username, mqtt_password=broker.password,
        api_database_url=database_url,
        # Rollups run when a test asks (test_api_rollups); not behind every test's back.
        api_rollup_interval_s=0)


@pytest.fixture
def make_client(api_settings: ApiSettings) -> Iterator[Callable[..., TestClient]]:
    """A TestClient on the api built from the test's settings, with overrides."""
    clients: list[TestClient] = []

    def make(*, role: TokenRole | None = TokenRole.ADMIN, site: str | None = None,
             **overrides: object) -> TestClient:
        """A client holding a fresh token of `role` (None: no token at all)."""
        settings = api_settings.model_copy(update=overrides)
        app = create_app(settings)
        client = TestClient(app, base_url="http://127.0.0.1/api/v1")
        client.__enter__()
        clients.append(client)
        if role is not None:
            with app.state.sessions() as db:
                token = create_token(db, role=role, site=site, name=f"test {role.value}")
            client.headers["Authorization"] = f"Bearer {token}"
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()
