"""The OpenAPI document fuzzed by schemathesis against the running api: no server error.

The api runs under uvicorn on a loopback port, with a real influxd, a real broker and a SQLite
file; an admin token reaches every route.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings

from api.access.tokens import TokenRole, create_token
from api.app import create_app
from api.database import make_engine, migrate, sessions
from api.settings import ApiSettings
from dynamo.devservices import InfluxdProcess, free_port

REPO = Path(__file__).resolve().parents[2]
# Examples per operation; raise it for a deeper run (DYNAMO_FUZZ_EXAMPLES=200).
EXAMPLES = int(os.environ.get("DYNAMO_FUZZ_EXAMPLES", "12"))


@pytest.fixture(scope="module")
def fuzz_server(influxd: InfluxdProcess, mosquitto: Any,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Any]]:
    database = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'api.sqlite3'}"
    engine = make_engine(database)
    migrate(engine)
    with sessions(engine)() as db:
        token = create_token(db, role=TokenRole.ADMIN, site=None, name="fuzz")
    engine.dispose()
    influx_db = f"fuzz_{uuid.uuid4().hex[:8]}"
    settings_ = ApiSettings(
        site_configs=REPO / "firmware-config" / "sites", influx_url=influxd.url,
        influx_db=influx_db, mqtt_host=mosquitto.host, mqtt_port=mosquitto.port,
        mqtt_username="api", mqtt_password=mosquitto.users["api"], api_database_url=database)
    app = create_app(settings_)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "the api did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", token, app.openapi()
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_no_server_error(fuzz_server: tuple[str, str, Any]) -> None:
    base_url, token, document = fuzz_server
    schema = schemathesis.openapi.from_dict(document)
    errors: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20

    http = httpx.Client(timeout=30)
    statuses: dict[int, int] = {}
    for operation in operations:
        # Positive and negative cases alike: a wrong value must get a 4xx, never a 5xx.
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def call(case: Any) -> None:
            # schemathesis's own `requests` transport trips on this urllib3; httpx sends the
            # request it serialised instead.
            kwargs = case.as_transport_kwargs(base_url=base_url,
                                              headers={"Authorization": f"Bearer {token}"})
            body = kwargs.get("json", kwargs.get("data"))
            response = http.request(
                kwargs["method"], kwargs["url"], params=kwargs.get("params"),
                headers={k: str(v) for k, v in kwargs.get("headers", {}).items()},
                **({"json": body} if "json" in kwargs else
                   {"content": body} if body is not None else {}))
            statuses[response.status_code // 100] = statuses.get(response.status_code // 100,
                                                                 0) + 1
            if response.status_code >= 500:
                errors.append(f"{case.method} {case.formatted_path} {case.query} "
                              f"{case.body!r:.200} → {response.status_code} "
                              f"{response.text[:200]}")

        call()
    http.close()
    # The fuzzing reached the routes: some requests succeeded, some were refused.
    assert statuses.get(2, 0) > 20 and statuses.get(4, 0) > 20, statuses
    assert not errors, "\n".join(errors[:20])
