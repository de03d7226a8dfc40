"""What is missing (`/a-completer`) in the real browser: a dryer batch without its output
moisture and a 6 h run of the dryer's fans that no batch covers, each with a link to the form
that fixes it; and the two interval rules by hand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from api.console.missing import running_spans, uncovered
from api.records.tables import Batch
from telemetry.influx.client import InfluxClient
from telemetry.influx.lineprotocol import line

PASSWORD = "barn-password-1"
PARIS = ZoneInfo("Europe/Paris")


def test_running_spans_by_hand() -> None:
    # Readings at 0, 60, 120, 180 s (ms ×1000): 1, 1, 0, 1 then a reading at 600 s (gap 420 s
    # over the 300 s limit). Running: [0, 120) merged from two spans; [180, 600) is a gap,
    # unknown, so not running.
    samples = [(0, 1.0), (60_000, 1.0), (120_000, 0.0), (180_000, 1.0), (600_000, 1.0)]
    assert running_spans(samples, start_ms=0, end_ms=1_000_000, max_gap_ms=300_000,
                         running=1.0) == [(0, 120_000)]
    # Cut at the window: [30 s, 90 s) of the first span only.
    assert running_spans(samples, start_ms=30_000, end_ms=90_000, max_gap_ms=300_000,
                         running=1.0) == [(30_000, 90_000)]


def test_uncovered_by_hand() -> None:
    hour = 3_600_000
    # A 10 h run [0, 10 h) with a batch [2 h, 3 h): uncovered [0, 2 h) (too short) and
    # [3 h, 10 h) = 7 h ≥ 6 h.
    assert uncovered([(0, 10 * hour)], [(2 * hour, 3 * hour)], min_ms=6 * hour) == [
        (3 * hour, 10 * hour)]
    # The same run covered in its middle [2 h, 8 h): 2 h on each side, nothing to report.
    assert uncovered([(0, 10 * hour)], [(2 * hour, 8 * hour)], min_ms=6 * hour) == []


@pytest.fixture(scope="module")
def scene(console_server: Any) -> dict[str, Any]:
    """Readings of the dryer's fan state and one batch lacking its output moisture."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    run_start = now - timedelta(hours=20)
    run_end = now - timedelta(hours=12)  # 8 h of fans running
    short_start = now - timedelta(hours=6)  # a 3 h run: under the 6 h rule
    settings = console_server.settings
    registry = console_server.app.state.registry
    eq = registry.get("ariege", "dryer")
    sensor = next(s for s in eq.sensors if s.id == "dryer.fan_running")
    tags = {"site": "ariege", "gateway": eq.gateway, "equipment": "dryer",
            "device": sensor.device, "sensor": sensor.id, "unit": sensor.unit,
            "quality": "good"}
    points: list[tuple[datetime, float]] = []
    t = run_start
    while t <= run_end:
        points.append((t, 1.0 if t < run_end else 0.0))
        t += timedelta(minutes=1)
    t = short_start
    while t <= short_start + timedelta(hours=3):
        points.append((t, 1.0 if t < short_start + timedelta(hours=3) else 0.0))
        t += timedelta(minutes=1)
    client = InfluxClient(url=settings.influx_url, database=settings.influx_db)
    try:
        client.write([line("readings", tags, {"value": v}, int(at.timestamp() * 1000))
                      for at, v in points])
    finally:
        client.close()
    with console_server.db() as db:
        batch = Batch(site="ariege", equipment="dryer", product="luzerne coupe 2",
                      started_at=now - timedelta(hours=40), ended_at=now - timedelta(hours=30),
                      mass_in_kg=5000.0, moisture_in_pct=62.0, moisture_out_pct=None,
                      created_by="test")
        db.add(batch)
        db.commit()
        batch_id = batch.id
    return {"run_start": run_start, "run_end": run_end, "batch_id": batch_id}


def test_missing_list_and_links(page: Any, make_person: Callable[..., Any],
                                login: Callable[..., None], scene: dict[str, Any]) -> None:
    make_person("meunier", PASSWORD, "operator", site="ariege")
    login(page, "meunier", PASSWORD)
    page.goto("/a-completer")
    dryer = page.locator('[data-equipment="ariege/dryer"]')
    moisture = dryer.locator(f'li[data-rule="moisture_out"][data-record="{scene["batch_id"]}"]')
    assert moisture.count() == 1
    assert "humidité de sortie" in moisture.inner_text()
    runs = dryer.locator('li[data-rule="uncovered_run"]')
    # Only the 8 h run: the 3 h one is under the rule's 6 h.
    assert runs.count() == 1
    assert "8,0 h" in runs.inner_text()

    runs.locator("a").click()
    page.wait_for_url("**/registres/ariege/dryer/batches/nouveau?**")
    start_local = scene["run_start"].astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")
    end_local = scene["run_end"].astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")
    assert page.input_value("#f-started_at") == start_local
    assert page.input_value("#f-ended_at") == end_local

    page.goto("/a-completer")
    page.locator(f'li[data-rule="moisture_out"][data-record="{scene["batch_id"]}"] a').click()
    page.wait_for_url(f"**/registres/ariege/dryer/batches/{scene['batch_id']}/modifier")
    assert page.input_value("#f-moisture_out_pct") == ""
    assert page.input_value("#f-moisture_in_pct") == "62"
