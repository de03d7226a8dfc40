"""The indicators page in Debian's Chromium against a real server and influxd: the dryer's
`kwh_per_t_water` goes from empty (no batch) to the value `GET /api/v1/.../indicators` answers
for the same day, once a batch is entered through the records api."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from api.access.tokens import TokenRole, create_token
from telemetry.influx.client import InfluxClient

PARIS = ZoneInfo("Europe/Paris")
# A whole past day, so that "now" never cuts it.
DAY = (datetime.now(PARIS) - timedelta(days=2)).date()


def _at(day: date, hour: float) -> datetime:
    return datetime.combine(day, time(), PARIS) + timedelta(hours=hour)


def _ms(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() * 1000)


def _counter(sensor: str, per_hour_kwh: float) -> list[str]:
    """A counter read every 10 min from 23:00 the day before to 01:00 the day after, rising
    by `per_hour_kwh` an hour between 08:00 and 18:00 local only: the day's difference is
    10 h × per_hour_kwh."""
    lines = []
    for step in range(-6, 25 * 6 + 1):
        hour = step / 6
        rising = min(max(hour - 8, 0.0), 10.0)
        value = 1000.0 + rising * per_hour_kwh
        lines.append(f"readings,site=ariege,gateway=dryer-gw,equipment=dryer,device=m,"
                     f"sensor={sensor},unit=kWh,quality=good value={value} "
                     f"{_ms(_at(DAY, hour))}")
    return lines


@pytest.fixture(scope="module")
def readings(console_server: Any) -> Iterator[None]:
    settings = console_server.settings
    client = InfluxClient(url=settings.influx_url, database=settings.influx_db)
    # electricity used 10 kWh/h → 100 kWh; solar heat 20 kWh/h → 200 kWh; grid import 6 kWh/h
    client.write([*_counter("dryer.electric", 10.0), *_counter("dryer.solar_heat", 20.0),
                  *_counter("dryer.grid_import", 6.0)])
    yield
    client.close()


@pytest.fixture(scope="module")
def api(console_server: Any) -> Iterator[httpx.Client]:
    with console_server.db() as db:
        token = create_token(db, role=TokenRole.ADMIN, site=None, name="indicators test")
    with httpx.Client(base_url=f"{console_server.base_url}/api/v1", timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def figure(page: Any, key: str) -> Any:
    return page.locator(f"#indicators [data-figure='{key}']")


def test_kwh_per_t_water_from_empty_to_the_api_value(
        page: Any, login: Callable[..., None], make_person: Callable[..., Any],
        readings: None, api: httpx.Client) -> None:
    make_person("op-ind", "indicators operator", "operator", site="ariege")
    login(page, "op-ind", "indicators operator")
    url = f"/indicateurs/ariege/dryer?periode=day&date={DAY.isoformat()}"
    page.goto(url)
    row = figure(page, "kwh_per_t_water")
    assert row.get_attribute("data-value") == ""
    assert "—" in row.inner_text()
    assert "aucun lot saisi" in row.inner_text()

    created = api.post("/sites/ariege/equipment/dryer/batches", json={
        "product": "luzerne, lot 12", "started_at": _at(DAY, 9).isoformat(),
        "ended_at": _at(DAY, 17).isoformat(), "mass_in_kg": 10000,
        "moisture_in_pct": 62, "moisture_out_pct": 14})
    assert created.status_code == 201, created.text
    answer = api.get("/sites/ariege/equipment/dryer/indicators",
                     params={"period": "day", "date": DAY.isoformat()})
    assert answer.status_code == 200, answer.text
    expected = answer.json()["dryer"]["kwh_per_t_water"]
    # By hand: water = 10 000 × (1 − 0.38 / 0.86) = 5 581.395 kg = 4.8 / 0.86 t;
    # energy = electricity 100 + solar heat 200 = 300 kWh; 300 × 0.86 / 4.8 = 53.75 kWh/t.
    assert expected == pytest.approx(53.75, rel=1e-9)

    page.goto(url)
    row = figure(page, "kwh_per_t_water")
    assert float(row.get_attribute("data-value")) == pytest.approx(expected, rel=1e-12)
    assert row.locator("td.number").inner_text().replace("\u202f", " ") == "54 kWh/t"
    assert figure(page, "water_evaporated_kg").locator("td.number").inner_text().replace(
        "\u202f", " ") == "5 581 kg"
    # No air readings this day: the air-side figures say why they are empty.
    ambient = figure(page, "air_side.ambient_share")
    assert ambient.get_attribute("data-value") == ""
    assert "ne mesure pas son air" in ambient.inner_text()
    # Each energy figure with its method and coverage.
    electricity = page.locator("#indicators tr[data-source='electricity']")
    assert electricity.get_attribute("data-method") == "counter_difference"
    assert "compteur" in electricity.inner_text()
    assert electricity.locator("td.number").first.inner_text().replace(
        "\u202f", " ") == "100,0 kWh"
    # Both views of the GHG totals, each with its ±, as the api answers them: GHG Protocol
    # scopes (scope 2 location- and market-based apart) and ISO 14064-1 categories.
    ghg = answer.json()["ghg"]
    for view in ("by_scope", "by_iso_category"):
        for total in ghg[view]:
            row = page.locator(f"#indicators table[data-view='{view}'] "
                               f"tr[data-total='{total['key']}']")
            assert float(row.get_attribute("data-value")) == pytest.approx(
                total["co2e_kg"], rel=1e-12), (view, total["key"])
            assert "±" in row.inner_text()
    keys = {t["key"] for t in ghg["by_scope"]}
    assert {"scope2_location", "scope2_market"} <= keys
    # GHG lines name their factor.
    lines = page.locator("#indicators table.ghg tr[data-factor]")
    assert lines.count() >= 1
    factor_id = lines.first.get_attribute("data-factor")
    assert factor_id and factor_id in lines.first.inner_text()

    # The downloads answer for this person (an operator: no PDF report, as for the api).
    assert page.locator("[data-download='pdf']").count() == 0
    for kind, media in (("csv", "text/csv"), ("xlsx", "spreadsheetml")):
        href = page.locator(f"[data-download='{kind}']").get_attribute("href")
        response = page.request.get(href)
        assert response.status == 200, kind
        assert media in response.headers["content-type"]
    csv_text = page.request.get(
        page.locator("[data-download='csv']").get_attribute("href")).text()
    assert "kwh_per_t_water" in csv_text


def test_the_form_picks_machine_and_period(
        page: Any, login: Callable[..., None], make_person: Callable[..., Any],
        readings: None) -> None:
    make_person("op-ind", "indicators operator", "operator", site="ariege")
    login(page, "op-ind", "indicators operator")
    page.goto("/indicateurs")
    assert page.url.endswith("/indicateurs/ariege/dryer")
    page.select_option("#machine", "ariege/freezer")
    page.select_option("#periode", "week")
    page.fill("#date", DAY.isoformat())
    with page.expect_navigation():
        page.click("#indicators-form button[type=submit]")
    assert "/indicateurs/ariege/freezer?" in page.url and "periode=week" in page.url
    assert page.locator("#indicators").get_attribute("data-equipment") == "freezer"
    assert figure(page, "kwh_per_kg_frozen").get_attribute("data-value") == ""
    assert "aucun lot saisi avec sa masse" in figure(page, "kwh_per_kg_frozen").inner_text()


def test_a_campaign_shows_the_api_campaign_figures(
        page: Any, login: Callable[..., None], make_person: Callable[..., Any],
        readings: None, api: httpx.Client) -> None:
    campaign = api.post("/sites/ariege/equipment/dryer/campaigns", json={
        "name": "Première coupe", "started_at": _at(DAY, 0).isoformat(),
        "ended_at": _at(DAY, 24).isoformat()})
    assert campaign.status_code == 201, campaign.text
    campaign_id = campaign.json()["id"]
    batch = api.post("/sites/ariege/equipment/dryer/batches", json={
        "product": "luzerne, coupe 1", "campaign_id": campaign_id,
        "started_at": _at(DAY, 8).isoformat(), "ended_at": _at(DAY, 18).isoformat(),
        "mass_in_kg": 5000, "moisture_in_pct": 62, "moisture_out_pct": 14})
    assert batch.status_code == 201, batch.text
    answer = api.get(f"/sites/ariege/equipment/dryer/campaigns/{campaign_id}/indicators")
    assert answer.status_code == 200, answer.text
    expected = answer.json()["dryer"]["kwh_per_t_water"]
    # By hand: the campaign's water is 5 000 × (1 − 0.38 / 0.86) kg = 2.4 / 0.86 t, over the
    # same 300 kWh of the day: 300 × 0.86 / 2.4 = 107.5 kWh/t.
    assert expected == pytest.approx(107.5, rel=1e-9)
    make_person("op-ind", "indicators operator", "operator", site="ariege")
    login(page, "op-ind", "indicators operator")
    page.goto(f"/indicateurs/ariege/dryer?periode=campaign&campagne={campaign_id}")
    assert page.locator("#campagne").input_value() == str(campaign_id)
    row = figure(page, "kwh_per_t_water")
    assert float(row.get_attribute("data-value")) == pytest.approx(expected, rel=1e-12)
    assert row.locator("td.number").inner_text().replace("\u202f", " ") == "108 kWh/t"


def test_phone_width_has_no_horizontal_scroll(
        browser: Any, console_server: Any, login: Callable[..., None],
        make_person: Callable[..., Any], readings: None) -> None:
    make_person("op-ind", "indicators operator", "operator", site="ariege")
    context = browser.new_context(viewport={"width": 360, "height": 740},
                                  base_url=console_server.base_url)
    try:
        phone = context.new_page()
        login(phone, "op-ind", "indicators operator")
        phone.goto(f"/indicateurs/ariege/dryer?periode=day&date={DAY.isoformat()}")
        assert figure(phone, "kwh_per_t_water").is_visible()
        overflow = phone.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0
    finally:
        context.close()
