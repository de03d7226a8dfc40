"""Access: tokens with roles and site scope, hashed at rest, made by the CLI; and injection
strings on every parameter that reaches InfluxQL."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.access.tokens import TokenRole
from api.database import make_engine, sessions
from api.records.tables import ApiToken
from telemetry.errors import ConfigError
from telemetry.influx.client import InfluxClient

DRYER = "/sites/ariege/equipment/dryer"
BATCH = {"product": "luzerne", "started_at": "2026-06-10T08:00:00+02:00",
         "ended_at": "2026-06-12T18:00:00+02:00"}
PERIOD = {"start": "2026-06-10T00:00:00Z", "end": "2026-06-11T00:00:00Z"}
INJECTIONS = ["x' OR '1'='1", 'x" OR 1=1 --', "dryer'; DROP DATABASE x; --", "a\\'b",
              "dryer\nSELECT", "..", "%27", "dryer' AND time > 0 --"]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'access.sqlite3'}"


def test_every_route_but_health_needs_a_valid_token(
        make_client: Callable[..., TestClient]) -> None:
    anonymous = make_client(role=None)
    assert anonymous.get("/health").status_code == 200
    for path in ("/equipment", f"{DRYER}", f"{DRYER}/latest", f"{DRYER}/batches", "/factors",
                 "/baselines", "/refrigerants"):
        response = anonymous.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
    anonymous.headers["Authorization"] = "Bearer dyn_not-a-real-token"
    assert anonymous.get("/equipment").status_code == 401


def test_roles_and_site_scope(make_client: Callable[..., TestClient]) -> None:
    operator = make_client(role=TokenRole.OPERATOR, site="ariege")
    evaluator = make_client(role=TokenRole.EVALUATOR, site="ariege")
    elsewhere = make_client(role=TokenRole.ADMIN, site="lozere")
    assert operator.post(f"{DRYER}/batches", json=BATCH).status_code == 201
    refused = evaluator.post(f"{DRYER}/batches", json=BATCH)
    assert refused.status_code == 403 and "operator" in refused.text
    assert len(evaluator.get(f"{DRYER}/batches").json()) == 1
    baseline = {"name": "b", "equipment_kind": "dryer", "output": "t_dry_matter",
                "activity_per_output": 1, "activity_unit": "L",
                "factor_id": "fuel-oil-combustion-l", "description": "abc", "source": "abc"}
    assert operator.post("/baselines", json=baseline).status_code == 403
    assert evaluator.post("/baselines", json=baseline).status_code == 201
    # Another site's token sees nothing of Ariège, not even that it exists.
    assert elsewhere.get("/equipment").json() == []
    assert elsewhere.get(f"{DRYER}/batches").status_code == 404
    assert elsewhere.get(f"{DRYER}/energy-by-source", params=PERIOD).status_code == 404


def test_the_cli_creates_a_hashed_token_the_api_accepts(
        make_client: Callable[..., TestClient], database_url: str) -> None:
    env = {**os.environ, "DYNAMO_API_DATABASE_URL": database_url}
    made = subprocess.run(
        [sys.executable, "-m", "dynamo", "api", "token", "create", "--role", "evaluator",
         "--site", "ariege", "--name", "équipe d'évaluation"],
        env=env, capture_output=True, text=True, timeout=60, check=True)
    token = made.stdout.strip()
    assert token.startswith("dyn_") and len(token) > 40
    engine = make_engine(database_url)
    with sessions(engine)() as db:
        [row] = db.scalars(select(ApiToken)).all()
    engine.dispose()
    assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in row.token_sha256 and (row.role, row.site) == ("evaluator", "ariege")
    client = make_client(role=None)
    client.headers["Authorization"] = f"Bearer {token}"
    assert [e["id"] for e in client.get("/equipment").json()] == ["dryer", "freezer",
                                                                  "packaging"]
    listed = subprocess.run([sys.executable, "-m", "dynamo", "api", "token", "list"], env=env,
                            capture_output=True, text=True, timeout=60, check=True).stdout
    assert token not in listed and "evaluator\tariege" in listed
    subprocess.run([sys.executable, "-m", "dynamo", "api", "token", "revoke", str(row.id)],
                   env=env, capture_output=True, timeout=60, check=True)
    assert client.get("/equipment").status_code == 401
    bad = subprocess.run([sys.executable, "-m", "dynamo", "api", "token", "create", "--role",
                          "root"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "root" in bad.stderr


def test_injection_strings_never_reach_influxql(client: TestClient,
                                                influx: InfluxClient) -> None:
    influx.write(['readings,equipment=dryer,quality=good,sensor=dryer.electric,site=ariege,'
                  'unit=kWh value=1 1781049600000'])
    for evil in INJECTIONS:
        segment = quote(evil, safe="")
        for path in (f"/sites/{segment}/equipment/dryer/energy-by-source",
                     f"/sites/ariege/equipment/{segment}/indicators",
                     f"/sites/ariege/equipment/{segment}/latest",
                     f"/sites/{segment}/equipment/dryer/energy"):
            response = client.get(path, params=PERIOD)
            assert response.status_code in (404, 422), (path, response.status_code)
        for params in ({"start": evil, "end": PERIOD["end"]},
                       {"start": PERIOD["start"], "end": evil},
                       {"period": evil, "date": "2026-06-10"},
                       {"period": "day", "date": evil},
                       {**PERIOD, "baseline": evil}):
            response = client.get(f"{DRYER}/indicators", params=params)
            assert response.status_code == 422, (params, response.text)
    # The database is intact and still answers.
    assert influx.query("SELECT count(value) FROM readings")[0].values[0][1] == 1


def test_factors_in_force_are_published_with_sources(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    user = tmp_path / "ours.yaml"
    # A new version of a shipped id (redefining a shipped version is refused).
    user.write_text('factors:\n  - {id: electricity-fr-mix-generation, version: "2023-checked", '
                    'value: 0.061, unit: kgCO2e/kWh, part: generation, '
                    'source: "Base Empreinte v23.4", valid_from: 2023-01-01}\n')
    client = make_client(role=TokenRole.EVALUATOR, api_factor_files=(user,),
                         api_gwp_report="AR6")
    factors = client.get("/factors").json()
    [current] = [f for f in factors if f["id"] == "electricity-fr-mix-generation"
                 and f["version"] == "2023-checked"]
    assert (current["value"], current["origin"]) == (0.061, "ours.yaml")
    assert all(f["source"] for f in factors)
    reports = {r["report"]: r for r in client.get("/refrigerants").json()}
    assert reports["AR6"]["in_use"] and not reports["AR4"]["in_use"]
    assert reports["AR6"]["gwp"]["R404A"] == 4728


def test_a_wrong_factor_file_stops_the_api(make_client: Callable[..., TestClient],
                                           tmp_path: Path) -> None:
    user = tmp_path / "broken.yaml"
    user.write_text("factors:\n  - {id: x, version: '1', value: 1, unit: kWh}\n")
    with pytest.raises(ConfigError, match=r"broken.yaml:2: factors\[0\]"):
        make_client(api_factor_files=(user,))
