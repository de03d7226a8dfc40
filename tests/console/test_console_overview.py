"""The site overview in Debian's Chromium against a real server, influxd and mosquitto: each
machine's state, live values and gateway status, a refresh without reloading the page, a phone's
width, and a person of one site never seeing another's."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alerting.alert import Alert, State
from alerting.store import AlertStore
from api.console import overview
from dynamo.devservices import MosquittoProcess
from telemetry.influx.client import InfluxClient
from telemetry.mqtt import make_client
from telemetry.site import Broker
from telemetry.topics import status_topic

REPO = Path(__file__).resolve().parents[2]
SITES = REPO / "firmware-config" / "sites"
TEMPLATES = REPO / "firmware-config" / "templates"
WAIT_S = 20.0


@pytest.fixture(scope="module")
def console_overrides(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two sites: Ariège as shipped, and a copy of its dryer as site `tarn` (its own gateway),
    so that a person of one site can be refused the other's pages; and an alert store."""
    root = tmp_path_factory.mktemp("sites")
    for site, rename in (("ariege", None), ("tarn", "tarn-dryer-gw")):
        (root / site).mkdir()
        for name in (("dryer.yaml", "freezer.yaml", "packaging.yaml") if rename is None
                     else ("dryer.yaml",)):
            text = (SITES / "ariege" / name).read_text()
            text = text.replace("template_dirs: [../../templates]",
                                f"template_dirs: [{TEMPLATES}]")
            if rename is not None:
                text = text.replace("site: ariege", "site: tarn").replace(
                    "gateway: dryer-gw", f"gateway: {rename}").replace(
                    "username: dryer-gw", f"username: {rename}")
            (root / site / name).write_text(text)
    alert_db = tmp_path_factory.mktemp("alerts") / "alerts.sqlite3"
    store = AlertStore(alert_db)
    now_ms = int(time.time() * 1000)
    store.save(Alert(rule_id="freezer-cabinet-warm", subject="freezer.cabinet_air_temp",
                     site="ariege", equipment="freezer", name="Cellule trop chaude",
                     severity="critical", contacts=("tech",), repeat_every_min=30,
                     escalate_after_min=15, since_ms=now_ms - 120_000, state=State.FIRING,
                     value=-12.0, unit="degC", fired_ms=now_ms - 60_000))
    store.close()
    return {"site_configs": root, "api_alert_db": alert_db}


@pytest.fixture(scope="module")
def influx_of(console_server: Any) -> Iterator[InfluxClient]:
    settings = console_server.settings
    client = InfluxClient(url=settings.influx_url, database=settings.influx_db)
    yield client
    client.close()


def _line(equipment: str, gateway: str, sensor: str, unit: str, value: float, at_ms: int,
          site: str = "ariege") -> str:
    tags = (f"site={site},gateway={gateway},equipment={equipment},device=d,sensor={sensor},"
            f"unit={unit},quality=good")
    return f"readings,{tags} value={value} {at_ms}"


def write_readings(client: InfluxClient, *, inlet_c: float, at_ms: int) -> None:
    client.write([
        _line("dryer", "dryer-gw", "dryer.inlet_air_temp", "degC", inlet_c, at_ms),
        _line("dryer", "dryer-gw", "dryer.hay_moisture", "percent", 23.4, at_ms),
        _line("dryer", "dryer-gw", "dryer.fan_running", "dimensionless", 1, at_ms),
        _line("freezer", "freezer-gw", "freezer.cabinet_air_temp", "degC", -27.25, at_ms),
        _line("freezer", "freezer-gw", "freezer.product_core_temp", "degC", -18.5, at_ms),
        _line("freezer", "freezer-gw", "freezer.compressor_running", "dimensionless", 0, at_ms),
        _line("packaging", "packaging-gw", "packaging.line_speed", "units/min", 118, at_ms),
        _line("packaging", "packaging-gw", "packaging.units_packed", "units", 12345, at_ms),
        _line("packaging", "packaging-gw", "packaging.line_state", "dimensionless", 2, at_ms),
        _line("dryer", "tarn-dryer-gw", "dryer.inlet_air_temp", "degC", 33.0, at_ms,
              site="tarn"),
    ])


def _publish(mosquitto: MosquittoProcess, user: str, topic: str, payload: bytes) -> None:
    client = make_client(broker=Broker(host=mosquitto.host, port=mosquitto.port,
                                       username=user, password=mosquitto.users[user]),
                         client_id=f"test-{user}-{time.monotonic_ns()}")
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1, retain=True)
        info.wait_for_publish(timeout=10)
        assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture(scope="module")
def gateways(console_server: Any, mosquitto: MosquittoProcess) -> Iterator[None]:
    """dryer-gw online (a birth), freezer-gw offline (its last will), packaging-gw silent."""
    now_ms = int(time.time() * 1000)
    published = {
        ("dryer-gw", status_topic("ariege", "dryer-gw")): json.dumps(
            {"v": 1, "site": "ariege", "gateway": "dryer-gw", "state": "online",
             "ts": now_ms}).encode(),
        ("freezer-gw", status_topic("ariege", "freezer-gw")): json.dumps(
            {"v": 1, "site": "ariege", "gateway": "freezer-gw", "state": "offline"}).encode(),
    }
    # The suite's broker is shared: a retained status another test left must not speak here.
    _publish(mosquitto, "packaging-gw", status_topic("ariege", "packaging-gw"), b"")
    for (user, topic), payload in published.items():
        _publish(mosquitto, user, topic, payload)
    broker = console_server.app.state.broker
    deadline = time.monotonic() + WAIT_S
    while (broker.gateway(site="ariege", gateway="dryer-gw") is None
           or broker.gateway(site="ariege", gateway="freezer-gw") is None):
        assert time.monotonic() < deadline, "the api never received the gateways' status"
        time.sleep(0.05)
    yield
    for user, topic in published:
        _publish(mosquitto, user, topic, b"")


@pytest.fixture
def ariege_operator(make_person: Callable[..., Any]) -> tuple[str, str]:
    make_person("op-ariege", "ariege operator pw", "operator", site="ariege")
    return "op-ariege", "ariege operator pw"


def card(page: Any, equipment: str) -> Any:
    return page.locator(f"article.machine[data-equipment='{equipment}']")


def test_each_machine_with_state_values_gateway_and_alerts(
        page: Any, login: Callable[..., None], ariege_operator: tuple[str, str],
        influx_of: InfluxClient, gateways: None) -> None:
    now_ms = int(time.time() * 1000)
    write_readings(influx_of, inlet_c=41.5, at_ms=now_ms - 3000)
    # A good count, then a newer bad reading (no value, only its reason): the bad one shows.
    influx_of.write([
        _line("packaging", "packaging-gw", "packaging.units_rejected", "units", 7, now_ms - 9000),
        "readings,site=ariege,gateway=packaging-gw,equipment=packaging,device=d,"
        f"sensor=packaging.units_rejected,unit=units,quality=bad reason=\"timeout\" {now_ms}"])
    login(page, *ariege_operator)
    page.goto("/")
    dryer, freezer, packaging = (card(page, e) for e in ("dryer", "freezer", "packaging"))
    assert dryer.get_attribute("data-state") == "running"      # fan_running = 1
    assert freezer.get_attribute("data-state") == "stopped"    # compressor_running = 0
    assert packaging.get_attribute("data-state") == "fault"    # line_state = 2
    assert dryer.get_attribute("data-gateway") == "online"
    assert freezer.get_attribute("data-gateway") == "offline"
    assert packaging.get_attribute("data-gateway") == "unknown"
    assert "En marche" in dryer.inner_text()
    assert "Passerelle hors ligne" in freezer.inner_text()
    # French number format: decimal comma, and the unit.
    inlet = dryer.locator("[data-value-role='inlet_air_temp'] dd").inner_text()
    assert inlet.replace("\u202f", " ") == "41,5 °C"
    moisture = dryer.locator("[data-value-role='hay_moisture'] dd").inner_text()
    assert moisture.replace("\u202f", " ") == "23,4 %"
    cabinet = freezer.locator("[data-value-role='cabinet_air_temp'] dd").inner_text()
    assert cabinet.replace("\u202f", " ") == "-27,2 °C" or cabinet.replace(
        "\u202f", " ") == "-27,3 °C"
    core = freezer.locator("[data-value-role='product_core_temp'] dd").inner_text()
    assert core.replace("\u202f", " ") == "-18,5 °C"
    packed = packaging.locator("[data-value-role='units_packed'] dd").inner_text()
    assert packed.replace("\u202f", " ") == "12 345 u"
    rejected = packaging.locator("[data-value-role='units_rejected'] dd").inner_text()
    assert rejected == "— (mesure invalide)"
    assert "Dernière mesure il y a" in dryer.locator("[data-role='age']").inner_text()
    # The freezer's firing alert, and no other machine's.
    assert "Cellule trop chaude" in freezer.locator("[data-role='alerts']").inner_text()
    assert "Aucune alerte active" in dryer.locator("[data-role='alerts']").inner_text()
    # Another site's machine is not on this person's overview.
    assert page.locator("section.site[data-site='tarn']").count() == 0


def test_values_refresh_without_reloading(
        page: Any, login: Callable[..., None], ariege_operator: tuple[str, str],
        influx_of: InfluxClient, gateways: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # The server runs in this process: a one-second refresh keeps the test short.
    monkeypatch.setattr(overview, "REFRESH_S", 1)
    write_readings(influx_of, inlet_c=41.5, at_ms=int(time.time() * 1000) - 2000)
    login(page, *ariege_operator)
    page.goto("/")
    page.evaluate("window.__notReloaded = true")
    raw = card(page, "dryer").locator("[data-value-role='inlet_air_temp'] .figure")
    assert raw.get_attribute("data-raw") == "41.5"
    write_readings(influx_of, inlet_c=47.25, at_ms=int(time.time() * 1000))
    page.wait_for_function(
        "document.querySelector(\"article[data-equipment='dryer'] "
        "[data-value-role='inlet_air_temp'] .figure\").dataset.raw === '47.25'",
        timeout=WAIT_S * 1000)
    assert page.evaluate("window.__notReloaded") is True  # same document: not reloaded
    assert card(page, "dryer").locator(
        "[data-value-role='inlet_air_temp'] dd").inner_text().startswith("47,2")


def test_phone_width_has_no_horizontal_scroll(
        browser: Any, console_server: Any, login: Callable[..., None],
        ariege_operator: tuple[str, str], influx_of: InfluxClient, gateways: None) -> None:
    write_readings(influx_of, inlet_c=41.5, at_ms=int(time.time() * 1000))
    context = browser.new_context(viewport={"width": 360, "height": 740},
                                  base_url=console_server.base_url)
    try:
        phone = context.new_page()
        login(phone, *ariege_operator)
        phone.goto("/")
        assert card(phone, "dryer").is_visible()
        overflow = phone.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0
    finally:
        context.close()


def test_a_person_of_one_site_gets_404_on_the_other(
        page: Any, login: Callable[..., None], make_person: Callable[..., Any],
        ariege_operator: tuple[str, str], influx_of: InfluxClient, gateways: None) -> None:
    login(page, *ariege_operator)
    for path in ("/sites/tarn", "/sites/tarn/cartes", "/indicateurs/tarn/dryer",
                 "/indicateurs/tarn/dryer/export.csv?periode=day&date=2026-12-01"):
        assert page.goto(path).status == 404, path
    assert page.goto("/sites/ariege").status == 200
    make_person("op-tarn", "tarn operator pw!", "operator", site="tarn")
    page.context.clear_cookies()
    login(page, "op-tarn", "tarn operator pw!")
    assert page.goto("/sites/ariege").status == 404
    assert page.goto("/indicateurs/ariege/dryer").status == 404
    page.goto("/")
    assert page.locator("article.machine[data-equipment='freezer']").count() == 0
    assert card(page, "dryer").get_attribute("data-state") == "unknown"  # no fan reading
    # An admin of every site sees both.
    make_person("admin-all", "admin of all sites", "admin")
    page.context.clear_cookies()
    login(page, "admin-all", "admin of all sites")
    page.goto("/")
    assert page.locator("section.site[data-site='tarn']").count() == 1
    assert page.locator("section.site[data-site='ariege']").count() == 1
