"""The api's own `/metrics`, served by a real uvicorn: requests counted by route template and
status, latency histogram; answered to a loopback client, refused (404) through a proxy or from
another address unless the metrics token is shown."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.settings import ApiSettings
from dynamo.devservices import free_port, wait_until
from telemetry.influx.client import InfluxClient
from telemetry.site import Broker

REPO = Path(__file__).resolve().parents[2]
TOKEN = "metrics-scrape-secret"


@pytest.fixture
def settings(influx: InfluxClient, broker_for: Callable[[str], Broker],
             tmp_path: Path) -> ApiSettings:
    broker = broker_for("api")
    return ApiSettings(site_configs=REPO / "firmware-config" / "sites", influx_url=influx.url,
                       influx_db=influx.database, mqtt_host=broker.host,
                       mqtt_port=broker.port, mqtt_username=broker.username,
                       mqtt_password=broker.password,
                       api_database_url=f"sqlite:///{tmp_path / 'api.sqlite3'}",
                       api_rollup_interval_s=0, api_metrics_token=TOKEN)


@pytest.fixture
def served(settings: ApiSettings) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout_s=60, what="the api to start")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_requests_by_route_template_and_status(served: str) -> None:
    with httpx.Client(base_url=served, timeout=10) as http:
        for _ in range(2):
            assert http.get("/api/v1/health").status_code == 200
        # No token: 401, counted under the template, not the concrete path.
        assert http.get("/api/v1/sites/ariege/equipment/dryer/latest").status_code == 401
        assert http.get("/api/v1/sites/ariege/equipment/freezer/latest").status_code == 401
        assert http.get("/no/such/page").status_code == 404
        time.sleep(0.05)  # the middleware counts once the response has gone
        scraped = http.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    samples = _samples(scraped.text)

    def requests(route: str, status: str) -> float:
        return samples.get(("dynamo_api_requests_total", frozenset(
            {("route", route), ("method", "GET"), ("status", status)})), 0.0)

    assert requests("/api/v1/health", "200") == 2
    latest = [route for (name, labels) in samples for key, route in labels
              if name == "dynamo_api_requests_total" and key == "route" and "latest" in route]
    assert set(latest) == {"/api/v1/sites/{site}/equipment/{equipment}/latest"}
    assert requests("/api/v1/sites/{site}/equipment/{equipment}/latest", "401") == 2
    assert requests("<unmatched>", "404") == 1
    count = samples[("dynamo_api_request_duration_seconds_count",
                     frozenset({("route", "/api/v1/health"), ("method", "GET")}))]
    assert count == 2
    # Every request is in the +Inf bucket, and none took more than 30 s.
    assert samples[("dynamo_api_request_duration_seconds_bucket", frozenset(
        {("route", "/api/v1/health"), ("method", "GET"), ("le", "30.0")}))] == 2


def test_who_may_scrape(served: str, settings: ApiSettings) -> None:
    with httpx.Client(base_url=served, timeout=10) as http:
        assert http.get("/metrics").status_code == 200  # loopback, no proxy
        # Through a reverse proxy every client looks like loopback: the header gives it away.
        assert http.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"}).status_code \
            == 404
        assert http.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7",
                                             "Authorization": "Bearer wrong"}).status_code == 404
        assert http.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7",
                                             "Authorization": f"Bearer {TOKEN}"}
                        ).status_code == 200
    # Another address (the test client's is "testclient", not an IP on loopback).
    with TestClient(create_app(settings)) as remote:
        assert remote.get("/metrics").status_code == 404
        assert remote.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
                          ).status_code == 200
    # Off by setting: no route at all.
    with TestClient(create_app(settings.model_copy(update={"api_metrics": False}))) as off:
        assert off.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
                       ).status_code == 404
