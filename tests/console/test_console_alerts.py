"""The alerts page in Debian's Chromium against the real console server, the suite's mosquitto
(with the repository's ACL) and the real alerting service (engine, SQLite store; a recording
phone stands in for the SMS network): an operator clicks "Acquitter", the alerting service
stops escalating, and the page shows who acknowledged it and how; a silence needs a reason;
a POST without its CSRF token is refused; an evaluator sees no button; a phone's width.

Escalation is real time but short (0.25 min = 15 s). That the acknowledged alert was not
escalated is judged only once a control alert, fired at the same moment and left alone, has
been escalated.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alerting.engine import Engine
from alerting.notifier import FallbackNotifier
from alerting.rules import load_alert_config
from alerting.service import AlertService
from alerting.store import AlertStore
from dynamo.devservices import MosquittoProcess, wait_until
from telemetry.mqtt import connect, make_client
from telemetry.payload import Reading, Telemetry, encode
from telemetry.site import Broker
from telemetry.topics import telemetry_topic

sys.path.insert(0, str(Path(__file__).parents[1] / "alerting"))
from alertkit import Phone  # the alerting tests' recording phone

WAIT_S = 45.0
PASSWORD = "correct horse battery staple"
RULES = """site: ariege
contacts:
  - {id: astreinte, name: Astreinte, phone: "+33600000001"}
  - {id: responsable, name: Responsable, phone: "+33600000002"}
defaults: {contacts: [astreinte, responsable], repeat_every_min: 0, escalate_after_min: 0.25}
rules:
  - {id: warm, name: Cellule trop chaude, kind: threshold, equipment: freezer,
     sensor: freezer.cabinet_air_temp, above: -15, clear: -17, severity: critical}
  - {id: hot, name: Air de séchage trop chaud, kind: threshold, equipment: dryer,
     sensor: dryer.inlet_air_temp, above: 90, clear: 85}
  - {id: fault, name: Ligne en défaut, kind: state, equipment: packaging,
     sensor: packaging.line_state, value: 2}
"""


@pytest.fixture(scope="module")
def alert_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("alerting") / "alerts.sqlite"


@pytest.fixture(scope="module")
def console_overrides(alert_db: Path) -> dict[str, Any]:
    return {"api_alert_db": alert_db}


@dataclass
class Alerting:
    service: AlertService
    store: AlertStore
    phone: Phone
    publish: Callable[[str, str, float], None]  # equipment, sensor, value, as freezer-gw…

    def kinds(self, alert_id: int) -> list[tuple[str, str]]:
        return [(n.kind, n.contact) for n in self.store.notifications(alert_id=alert_id)]

    def open_id(self, rule: str) -> int:
        return next(a.id for a in self.store.open_alerts() if a.rule_id == rule)


@pytest.fixture(scope="module")
def alerting(console_server: Any, alert_db: Path, mosquitto: MosquittoProcess,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alerting]:
    """The real alerting service on the store the console reads, and test-gw to feed it."""
    rules = tmp_path_factory.mktemp("rules") / "ariege.yaml"
    rules.write_text(RULES, encoding="utf-8")

    def broker(user: str) -> Broker:
        return Broker(host=mosquitto.host, port=mosquitto.port, username=user,
                      password=mosquitto.users[user])

    store = AlertStore(alert_db)
    phone = Phone()
    service = AlertService(engine=Engine(config=load_alert_config(rules), store=store,
                                         notifier=FallbackNotifier(notifiers=[phone])),
                           broker=broker("alerting"), tick_s=0.2,
                           client_id=f"alerting-console-{uuid.uuid4().hex[:6]}")
    gateway = make_client(broker=broker("test-gw"), client_id=f"gw-{uuid.uuid4().hex[:6]}")
    connect(gateway, broker("test-gw"))
    seq = [0]

    def publish(equipment: str, sensor: str, value: float) -> None:
        seq[0] += 1
        telemetry = Telemetry(site="ariege", gateway="test-gw", equipment=equipment,
                              device="d", seq=seq[0], ts=int(time.time() * 1000),
                              readings=(Reading(sensor=sensor, value=value, unit="degC"),))
        gateway.publish(telemetry_topic("ariege", "test-gw", equipment), encode(telemetry),
                        qos=1).wait_for_publish(timeout=WAIT_S)

    service.start()
    try:
        wait_until(service.connected.is_set, timeout_s=WAIT_S, what="the alerting service")
        wait_until(gateway.is_connected, timeout_s=WAIT_S, what="the test gateway")
        wait_until(console_server.app.state.broker.connected.is_set, timeout_s=WAIT_S,
                   what="the console's broker connection")
        yield Alerting(service=service, store=store, phone=phone, publish=publish)
    finally:
        gateway.disconnect()
        gateway.loop_stop()
        service.stop()
        store.close()


def test_operator_acknowledges_and_the_alerting_service_stops_escalating(
        alerting: Alerting, page: Any, login: Callable[..., None],
        make_person: Callable[..., Any]) -> None:
    make_person("alice", PASSWORD, role="operator", site="ariege", name="Alice Martin")
    # Both alerts fire now; each would escalate to `responsable` 15 s after its first SMS.
    alerting.publish("freezer", "freezer.cabinet_air_temp", -9.5)
    alerting.publish("dryer", "dryer.inlet_air_temp", 97.0)
    wait_until(lambda: len(alerting.phone.sent) == 2, timeout_s=WAIT_S, what="two firing SMS")
    warm, hot = alerting.open_id("warm"), alerting.open_id("hot")

    login(page, "alice", PASSWORD)
    page.goto("/alertes")
    card = page.locator(f"article.alert[data-alert='{warm}']")
    assert "Cellule trop chaude" in card.inner_text()
    assert "-9,5" in card.inner_text()  # French decimals
    assert "contact n° 1 prévenu" in card.inner_text()
    with page.expect_navigation():
        card.get_by_role("button", name="Acquitter").click()
    assert page.locator("[data-role=sent]").inner_text() == "Commande envoyée au service d'alerte."

    # The alerting service applies it; the page shows it from the store (now or at a refresh).
    acked = f"article.alert[data-alert='{warm}'] [data-role=acked]"
    page.wait_for_selector(f"{acked}[data-via=console]", timeout=WAIT_S * 1000)
    shown = page.locator(acked).inner_text()
    assert shown.startswith("Acquittée par alice (console) le ")
    # The command's own record is written just after the ack: it shows at a refresh at most.
    page.wait_for_selector("[data-role=command][data-result=applied]", timeout=WAIT_S * 1000)
    assert page.locator("[data-role=command]").inner_text() == \
        "Commande appliquée par le service d'alerte."
    history = page.locator(f"article.alert-history[data-alert='{warm}'] ul.acks li")
    assert history.count() == 1
    assert history.get_attribute("data-via") == "console"
    assert "alice (console)" in history.inner_text() and "accepté" in history.inner_text()

    alert = alerting.store.get(warm)
    assert alert is not None
    assert (alert.acked_by, alert.acked_via) == ("user:alice", "console")
    # The control alert, left alone, escalates; the acknowledged one never did.
    wait_until(lambda: ("escalation", "responsable") in alerting.kinds(hot),
               timeout_s=WAIT_S, what="the control alert's escalation")
    assert alerting.kinds(warm) == [("firing", "astreinte"), ("ack", "astreinte")]
    assert not any(to == "+33600000002" and f"n°{warm} " in text
                   for to, text in alerting.phone.sent)
    assert "acquittée par alice (console)" in alerting.store.notifications(alert_id=warm)[1].text

    # The control alert is still to acknowledge; the acknowledged one has no button any more.
    page.reload()
    assert page.locator(f"article.alert[data-alert='{warm}'] button").count() == 0
    assert page.locator(f"article.alert[data-alert='{hot}'] button").count() == 1


def test_silence_needs_a_reason_and_is_applied(alerting: Alerting, page: Any,
                                               login: Callable[..., None],
                                               make_person: Callable[..., Any]) -> None:
    make_person("bruno", PASSWORD, role="operator", site="ariege")
    page.set_viewport_size({"width": 360, "height": 780})  # a phone held in a glove
    login(page, "bruno", PASSWORD)
    page.goto("/alertes")
    form = page.locator("article.silence[data-equipment=packaging] form")
    for target in (form.locator("select"), form.locator("input[name=reason]"),
                   form.get_by_role("button", name="Mettre en silence")):
        box = target.bounding_box()
        assert box is not None and box["height"] >= 48 and box["x"] + box["width"] <= 360
    form.locator("select").select_option(label="4 h")
    with page.expect_navigation():
        form.get_by_role("button", name="Mettre en silence").click()
    error = page.locator("article.silence[data-equipment=packaging] .field-error")
    assert error.inner_text() == "Indiquez la raison de la mise en silence."
    assert page.locator("article.silence[data-equipment=packaging] select").input_value() == "240"
    assert alerting.store.silence_at(site="ariege", equipment="packaging",
                                     at_ms=int(time.time() * 1000)) is None

    form = page.locator("article.silence[data-equipment=packaging] form")
    form.locator("input[name=reason]").fill("changement de bobine")
    with page.expect_navigation():
        form.get_by_role("button", name="Mettre en silence").click()
    assert page.locator("[data-role=sent]").is_visible()
    page.wait_for_selector("li[data-silence=packaging]", timeout=WAIT_S * 1000)
    assert "changement de bobine (par bruno, console)" in page.locator(
        "li[data-silence=packaging]").inner_text()
    silence = alerting.store.silence_at(site="ariege", equipment="packaging",
                                        at_ms=int(time.time() * 1000))
    assert silence is not None
    assert (silence.created_by, silence.via) == ("user:bruno", "console")
    # 4 h from the click, as the api computed it (a few seconds of slack for the round trip).
    assert abs(silence.until_ms - silence.start_ms - 4 * 3_600_000) < 10_000


def test_csrf_roles_and_scope(alerting: Alerting, page: Any, login: Callable[..., None],
                              make_person: Callable[..., Any]) -> None:
    alerting.publish("freezer", "freezer.cabinet_air_temp", -18.0)  # the first alert resolves
    wait_until(lambda: not any(a.rule_id == "warm" for a in alerting.store.open_alerts()),
               timeout_s=WAIT_S, what="the first freezer alert resolved")
    alerting.publish("freezer", "freezer.cabinet_air_temp", -8.0)  # a new one fires
    wait_until(lambda: any(a.rule_id == "warm" for a in alerting.store.open_alerts()),
               timeout_s=WAIT_S, what="a new freezer alert")
    warm = alerting.open_id("warm")
    make_person("carla", PASSWORD, role="operator", site="ariege")
    login(page, "carla", PASSWORD)
    page.goto("/alertes")
    # Posted without the session's CSRF token: refused, nothing sent.
    refused = page.request.post(f"/alertes/ariege/{warm}/acquitter", form={"next": "/alertes"},
                                max_redirects=0)
    assert refused.status == 403
    assert alerting.store.acks(alert_id=warm) == []
    assert page.request.get("/sites/tarn/alertes").status == 404

    make_person("eve", PASSWORD, role="evaluator", site="ariege")
    evaluator = page.context.browser.new_context(base_url=page.url.split("/alertes")[0])
    try:
        other = evaluator.new_page()
        login(other, "eve", PASSWORD)
        other.goto("/alertes")
        assert other.locator(f"article.alert[data-alert='{warm}']").count() == 1
        assert other.locator("button", has_text="Acquitter").count() == 0
        assert other.locator("form.silence-form").count() == 0
        token = other.locator("input[name=csrf_token]").first.get_attribute("value")
        forbidden = other.request.post(f"/alertes/ariege/{warm}/acquitter",
                                       form={"csrf_token": token or "", "next": "/alertes"},
                                       max_redirects=0)
        assert forbidden.status == 403
    finally:
        evaluator.close()
    assert alerting.store.acks(alert_id=warm) == []
