"""Indicators against hand-computed cases (one folder per case): the series go into the real
influxd, the records through the api into a real database, and the figures come back over HTTP.

A case folder holds `case.yaml` (equipment, request, series, records, expected figures with the
arithmetic in comments) and optionally `factors.yaml`, the evaluation team's own factors.
Expected keys are paths into the response: `a.b[key=value].c`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from api.sites import SiteRegistry
from telemetry.influx.client import InfluxClient
from telemetry.influx.lineprotocol import line

CASES = sorted((Path(__file__).parent / "cases" / "indicators").glob("*/case.yaml"))
REPO = Path(__file__).resolve().parents[2]
_STEP = re.compile(r"^(\w+)(?:\[(.+?)=(.+)\])?$")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    # The relational layer is tested on both databases elsewhere; cases need one.
    return f"sqlite:///{tmp_path / 'cases.sqlite3'}"


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _points(spec: list[Any]) -> list[tuple[int, float]]:
    points: list[tuple[int, float]] = []
    for item in spec:
        if isinstance(item, list):
            points.append((_ms(item[0]), float(item[1])))
            continue
        start, stop = _ms(item["ramp_from"]), _ms(item["ramp_to"])
        step = int(item.get("step_s", 60)) * 1000
        for t in range(start, stop + 1, step):
            points.append((t, item["value"] + item.get("slope_per_h", 0) * (t - start) / 3.6e6))
    return points


def _write_series(influx: InfluxClient, equipment_id: str, series: dict[str, list[Any]]) -> None:
    registry = SiteRegistry.load(REPO / "firmware-config" / "sites")
    eq = registry.get("ariege", equipment_id)
    assert eq is not None
    sensors = {s.id: s for s in eq.sensors}
    lines = []
    for sensor_id, spec in series.items():
        sensor = sensors[sensor_id]
        tags = {"site": eq.site, "gateway": eq.gateway, "equipment": eq.id,
                "device": sensor.device, "sensor": sensor.id, "unit": sensor.unit,
                "quality": "good"}
        lines += [line("readings", tags, {"value": v}, t) for t, v in _points(spec)]
    influx.write(lines)


def _dig(body: Any, path: str) -> Any:
    for step in path.split("."):
        match = _STEP.match(step)
        assert match, f"bad path step {step!r}"
        name, key, value = match.groups()
        body = body[name]
        if key is not None:
            found = [item for item in body if str(item[key]) == value]
            assert len(found) == 1, f"{path}: {len(found)} items with {key}={value}"
            body = found[0]
    return body


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float | int) and not isinstance(expected, bool):
        return actual == pytest.approx(expected, rel=1e-6, abs=1e-6)
    if isinstance(expected, str) and isinstance(actual, str) and expected.endswith("Z"):
        return datetime.fromisoformat(actual) == datetime.fromisoformat(expected)
    return bool(actual == expected)


@pytest.mark.parametrize("case_file", CASES, ids=[c.parent.name for c in CASES])
def test_indicator_case(case_file: Path, influx: InfluxClient,
                        make_client: Callable[..., TestClient]) -> None:
    case = yaml.safe_load(case_file.read_text())
    factor_files = (case_file.parent / case["factors"],) if "factors" in case else ()
    client = make_client(api_factor_files=factor_files)
    _write_series(influx, case["equipment"], case["series"])
    base = f"/sites/ariege/equipment/{case['equipment']}"
    routes = {"campaigns": f"{base}/campaigns", "batches": f"{base}/batches",
              "refrigerant_top_ups": f"{base}/refrigerant-top-ups",
              "material_lots": f"{base}/material-lots", "baselines": "/baselines"}
    for kind, rows in case.get("records", {}).items():
        for row in rows:
            response = client.post(routes[kind], json=row)
            assert response.status_code == 201, response.text
    response = client.get(f"{base}/indicators", params=case["request"])
    assert response.status_code == 200, response.text
    body = response.json()
    _check(body, case["expected"], "period")
    for route, expected in case.get("also", {}).items():
        response = client.get(f"{base}/{route}", params={
            k: v for k, v in case["request"].items() if k in ("baseline", "nominal_rate_upm")})
        assert response.status_code == 200, (route, response.text)
        _check(response.json(), expected, route)


def _check(body: dict[str, Any], expected: dict[str, Any], what: str) -> None:
    wrong = {path: (_dig(body, path), value) for path, value in expected.items()
             if not _same(_dig(body, path), value)}
    assert not wrong, f"{what}: actual vs expected: {wrong}\nnotes: {body['notes']}"


def test_cases_cover_what_the_issue_asks() -> None:
    text = " ".join(c.read_text() for c in CASES)
    for needle in ("resets: 1", "clocks go forward", "hole in the data", "refrigerant_top_ups",
                   "power_integral"):
        assert needle in text, needle
