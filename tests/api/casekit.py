"""Indicator cases as data: series specs into InfluxDB, expected figures found by path.

Shared by the case runners (test_indicator_cases.py, test_api_rollup_cases.py). A series spec
is a list of `[time, value]` pairs and `{ramp_from, ramp_to, value, slope_per_h, step_s}`
ramps; an expected key is a path into the response, `a.b[key=value].c` (`[k=v&k2=v2]`: both).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from api.sites import SiteRegistry
from telemetry.influx.client import InfluxClient
from telemetry.influx.lineprotocol import line

_STEP = re.compile(r"^(\w+)(?:\[(.+?)=(.+)\])?$")


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def points(spec: list[Any]) -> list[tuple[int, float]]:
    out: list[tuple[int, float]] = []
    for item in spec:
        if isinstance(item, list):
            out.append((ms(item[0]), float(item[1])))
            continue
        start, stop = ms(item["ramp_from"]), ms(item["ramp_to"])
        step = int(item.get("step_s", 60)) * 1000
        for t in range(start, stop + 1, step):
            out.append((t, item["value"] + item.get("slope_per_h", 0) * (t - start) / 3.6e6))
    return out


def write_series(influx: InfluxClient, registry: SiteRegistry, equipment_id: str,
                 series: dict[str, list[Any]]) -> None:
    """The readings a gateway would have sent, as good readings of the site's sensors."""
    eq = registry.get("ariege", equipment_id)
    assert eq is not None
    sensors = {s.id: s for s in eq.sensors}
    lines = []
    for sensor_id, spec in series.items():
        sensor = sensors[sensor_id]
        tags = {"site": eq.site, "gateway": eq.gateway, "equipment": eq.id,
                "device": sensor.device, "sensor": sensor.id, "unit": sensor.unit,
                "quality": "good"}
        lines += [line("readings", tags, {"value": v}, t) for t, v in points(spec)]
    for i in range(0, len(lines), 5000):
        influx.write(lines[i:i + 5000])


def dig(body: Any, path: str) -> Any:
    for step in path.split("."):
        match = _STEP.match(step)
        assert match, f"bad path step {step!r}"
        name, key, value = match.groups()
        body = body[name]
        if key is not None:
            # `[a=1&b=x]`: every condition holds
            conditions = [c.split("=", 1) for c in f"{key}={value}".split("&")]
            found = [item for item in body if all(str(item[k]) == v for k, v in conditions)]
            assert len(found) == 1, f"{path}: {len(found)} items with {key}={value}"
            body = found[0]
    return body


def same(actual: Any, expected: Any, *, tolerance: float) -> bool:
    if isinstance(expected, float | int) and not isinstance(expected, bool):
        return bool(actual == pytest.approx(expected, rel=tolerance, abs=tolerance))
    if isinstance(expected, str) and isinstance(actual, str) and expected.endswith("Z"):
        return datetime.fromisoformat(actual) == datetime.fromisoformat(expected)
    return bool(actual == expected)


def mismatches(body: Any, expected: dict[str, Any], *, tolerance: float
               ) -> dict[str, tuple[Any, Any]]:
    """Every expected path whose figure differs: path → (actual, expected)."""
    return {path: (dig(body, path), value) for path, value in expected.items()
            if not same(dig(body, path), value, tolerance=tolerance)}
