"""Commands from the api to the alerting service, on the real Mosquitto with the repository's
ACL and the real service (engine, SQLite store, real time; a recording phone stands in for the
SMS network): an acknowledgement stops escalation and repeats exactly as an SMS reply does and
is recorded as `via=console`; a silence holds the SMS; a redelivered command acts once; a
malformed one is counted and set aside; a gateway cannot send one; the api's routes send them.

Times are real but short: escalation after 6 s, repeats every 9 s. "Nothing was sent" is
never judged by a clock alone: an alert left alone (the control) must have escalated and
repeated in the same run first.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from alertkit import Phone
from fastapi.testclient import TestClient

from alerting.engine import Engine
from alerting.notifier import FallbackNotifier
from alerting.rules import load_alert_config
from alerting.service import AlertService
from alerting.store import AlertStore
from api.access.tokens import TokenRole, create_token
from api.app import create_app
from api.settings import ApiSettings
from dynamo.devservices import wait_until
from telemetry.influx.client import InfluxClient
from telemetry.mqtt import connect, make_client
from telemetry.payload import Reading, Telemetry, encode
from telemetry.site import Broker
from telemetry.topics import telemetry_topic

REPO = Path(__file__).resolve().parents[2]
ASTREINTE, RESPONSABLE = "+33600000001", "+33600000002"
WAIT_S = 30.0
# Three alerts of three equipment, each escalating to `responsable` after 0.1 min = 6 s and
# repeated every 0.15 min = 9 s while unacknowledged.
RULES = """site: {site}
contacts:
  - {{id: astreinte, name: Astreinte, phone: "+33600000001"}}
  - {{id: responsable, name: Responsable, phone: "+33600000002"}}
defaults: {{contacts: [astreinte, responsable], repeat_every_min: 0.15, escalate_after_min: 0.1}}
rules:
  - {{id: leak, name: Fuite R290, kind: threshold, equipment: freezer, sensor: freezer.leak,
     above: 500, clear: 200}}
  - {{id: hot, name: Surchauffe, kind: threshold, equipment: dryer, sensor: dryer.outlet_temp,
     above: 60, clear: 55}}
  - {{id: jam, name: Bourrage, kind: state, equipment: packaging, sensor: packaging.jam}}
"""


@dataclass
class Rig:
    site: str
    service: AlertService
    store: AlertStore
    phone: Phone
    gateway: mqtt.Client  # test-gw
    api: mqtt.Client  # the `api` broker user, as the api publishes
    gateway_acks: dict[int, Any]  # mid -> the broker's PUBACK reason code, for test-gw

    def topic(self) -> str:
        return f"dynamo/v1/{self.site}/alerting/commands"

    def command(self, payload: dict[str, Any] | bytes) -> None:
        """Publish as the api user and wait until the broker has it."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.api.publish(self.topic(), data, qos=1).wait_for_publish(timeout=WAIT_S)

    def fire(self, *readings: tuple[str, str, float]) -> None:
        now_ms = int(time.time() * 1000)
        for equipment, sensor, value in readings:
            telemetry = Telemetry(site=self.site, gateway="test-gw", equipment=equipment,
                                  device="d", seq=1, ts=now_ms,
                                  readings=(Reading(sensor=sensor, value=value, unit=""),))
            self.gateway.publish(telemetry_topic(self.site, "test-gw", equipment),
                                 encode(telemetry), qos=1).wait_for_publish(timeout=WAIT_S)

    def alert_id(self, rule: str) -> int:
        return next(a.id for a in self.store.open_alerts() if a.rule_id == rule)

    def kinds(self, alert_id: int) -> list[tuple[str, str]]:
        return [(n.kind, n.contact) for n in self.store.notifications(alert_id=alert_id)]


def _client(broker: Broker, name: str) -> mqtt.Client:
    client = make_client(broker=broker, client_id=f"{name}-{uuid.uuid4().hex[:8]}")
    connect(client, broker)
    wait_until(client.is_connected, timeout_s=WAIT_S, what=f"the {name} client")
    return client


@pytest.fixture
def rig(tmp_path: Path, broker_for: Callable[[str], Broker]) -> Iterator[Rig]:
    site = f"cmd{uuid.uuid4().hex[:6]}"  # a site of its own: no other test's traffic
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES.format(site=site), encoding="utf-8")
    store = AlertStore(tmp_path / "alerts.sqlite")
    phone = Phone()
    engine = Engine(config=load_alert_config(rules), store=store,
                    notifier=FallbackNotifier(notifiers=[phone]))
    service = AlertService(engine=engine, broker=broker_for("alerting"), tick_s=0.2,
                           client_id=f"alerting-{site}")
    gateway_acks: dict[int, Any] = {}
    gateway = _client(broker_for("test-gw"), "test-gw")
    gateway.on_publish = lambda _c, _u, mid, reason, _p: gateway_acks.__setitem__(mid, reason)
    api = _client(broker_for("api"), "api")
    service.start()
    try:
        wait_until(service.connected.is_set, timeout_s=WAIT_S, what="the alerting service")
        yield Rig(site=site, service=service, store=store, phone=phone, gateway=gateway,
                  api=api, gateway_acks=gateway_acks)
    finally:
        for client in (gateway, api):
            client.disconnect()
            client.loop_stop()
        service.stop()
        store.close()


def _command(action: str, **fields: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "action": action, "by": "user:alice", "via": "console",
            "at": datetime.now(UTC).isoformat(), "reason": "", **fields}


def test_ack_stops_escalation_and_silence_holds_sms(rig: Rig) -> None:
    rig.fire(("freezer", "freezer.leak", 800.0), ("dryer", "dryer.outlet_temp", 70.0),
             ("packaging", "packaging.jam", 1.0))
    wait_until(lambda: len(rig.phone.sent) == 3, timeout_s=WAIT_S, what="three firing SMS")
    leak, hot, jam = (rig.alert_id(rule) for rule in ("leak", "hot", "jam"))

    # Within the 6 s before escalation: acknowledge the leak, silence the dryer for an hour.
    ack = _command("ack", alert_id=leak, equipment="freezer", reason="je m'en occupe")
    until = datetime.now(UTC) + timedelta(hours=1)
    hush = _command("silence", equipment="dryer", until=until.isoformat(), reason="dégivrage")
    rig.command(ack)
    rig.command(hush)
    wait_until(lambda: rig.service.counters.commands == 2, timeout_s=WAIT_S,
               what="both commands applied")

    alert = rig.store.get(leak)
    assert alert is not None
    assert (alert.acked_by, alert.acked_via, alert.level) == ("user:alice", "console", 0)
    [record] = rig.store.acks(alert_id=leak)
    assert (record.contact, record.via, record.accepted, record.phone, record.text) == (
        "user:alice", "console", True, "", "je m'en occupe")
    # Everyone told so far (astreinte only) hears who acknowledged it, and how.
    assert rig.kinds(leak) == [("firing", "astreinte"), ("ack", "astreinte")]
    ack_text = rig.store.notifications(alert_id=leak)[1].text
    assert f"n°{leak}" in ack_text and "acquittée par alice (console)" in ack_text
    silence = rig.store.silence_at(site=rig.site, equipment="dryer",
                                   at_ms=int(time.time() * 1000))
    assert silence is not None
    assert (silence.created_by, silence.via, silence.reason) == ("user:alice", "console",
                                                                 "dégivrage")
    assert silence.until_ms == int(until.timestamp() * 1000)
    applied = {c.command_id: c.result for c in rig.store.commands()}
    assert applied == {ack["id"]: "applied", hush["id"]: "applied"}

    # The control alert, left alone, escalates (6 s) then repeats (9 s) to both contacts.
    wait_until(lambda: ("repeat", "responsable") in rig.kinds(jam), timeout_s=WAIT_S,
               what="the control alert's escalation and repeat")
    assert rig.kinds(jam)[:2] == [("firing", "astreinte"), ("escalation", "responsable")]
    # Meanwhile the acknowledged alert and the silenced one sent nothing more.
    assert rig.kinds(leak) == [("firing", "astreinte"), ("ack", "astreinte")]
    assert rig.kinds(hot) == [("firing", "astreinte")]
    assert [to for to, text in rig.phone.sent if f"n°{leak} " in text] == [ASTREINTE] * 2
    assert not any(to == RESPONSABLE and (f"n°{leak} " in text or f"n°{hot} " in text)
                   for to, text in rig.phone.sent)


def test_duplicates_act_once_malformed_are_set_aside_gateways_cannot_command(rig: Rig) -> None:
    rig.fire(("freezer", "freezer.leak", 800.0))
    wait_until(lambda: len(rig.phone.sent) == 1, timeout_s=WAIT_S, what="the firing SMS")
    leak = rig.alert_id("leak")

    # A gateway may not write on the command topic: the broker refuses it (MQTT 5 PUBACK).
    forged = json.dumps(_command("ack", alert_id=leak, by="user:mallory")).encode()
    info = rig.gateway.publish(rig.topic(), forged, qos=1)
    info.wait_for_publish(timeout=WAIT_S)
    assert rig.gateway_acks[info.mid].is_failure
    assert str(rig.gateway_acks[info.mid]) == "Not authorized"

    # Malformed or not this site's: each counted, set aside with its reason, nothing applied.
    bad: list[bytes | dict[str, Any]] = [
        b"not json",
        {"action": "ack", "alert_id": leak},  # no id, by, via, at
        _command("ack"),  # no alert_id
        _command("reboot", alert_id=leak),
        _command("ack", alert_id=leak, by="alice"),  # not user:<login>
        _command("ack", alert_id=999),  # no such alert at this site
        _command("silence", equipment="boiler", reason="x",
                 until=(datetime.now(UTC) + timedelta(hours=1)).isoformat()),
        _command("silence", equipment="freezer", reason="x",
                 until=(datetime.now(UTC) + timedelta(days=8)).isoformat()),
        _command("silence", equipment="freezer", reason="  ",
                 until=(datetime.now(UTC) + timedelta(hours=1)).isoformat()),
    ]
    for payload in bad:
        rig.command(payload)
    wait_until(lambda: rig.service.counters.commands_rejected == len(bad), timeout_s=WAIT_S,
               what="every malformed command counted")
    rejected = rig.store.commands()
    assert [c.result for c in rejected] == ["rejected"] * len(bad)
    reasons = [c.reason for c in reversed(rejected)]
    assert reasons[5] == f"no alert 999 at site '{rig.site}'"
    assert reasons[6] == f"no equipment 'boiler' at site '{rig.site}'"
    assert reasons[7] == "a silence may last 7 days at most"
    assert rig.store.acks(alert_id=leak) == []
    assert rig.store.silence_at(site=rig.site, equipment="freezer",
                                at_ms=int(time.time() * 1000)) is None

    # The service is still at work: the next good command acts, and once only, however many
    # times it is delivered (QoS 1 redelivers after a lost PUBACK).
    ack = _command("ack", alert_id=leak, equipment="freezer")
    for _ in range(3):
        rig.command(ack)
    wait_until(lambda: rig.service.counters.commands_duplicate == 2, timeout_s=WAIT_S,
               what="the two redeliveries")
    assert rig.service.counters.commands == 1
    [record] = rig.store.acks(alert_id=leak)
    assert (record.accepted, record.via) == (True, "console")
    assert rig.kinds(leak) == [("firing", "astreinte"), ("ack", "astreinte")]
    # A new command for the acknowledged alert is refused by the engine, as a second "OK 1".
    again = _command("ack", alert_id=leak)
    rig.command(again)
    wait_until(lambda: rig.service.counters.commands == 2, timeout_s=WAIT_S,
               what="the second acknowledgement")
    found = rig.store.command(again["id"])
    assert found is not None and (found.result, found.reason) == ("refused",
                                                                 "already acknowledged")
    assert rig.service.counters.malformed == 0  # the telemetry counter is not touched


def test_api_routes_send_commands_the_service_applies(
        tmp_path: Path, broker_for: Callable[[str], Broker], influx: InfluxClient) -> None:
    """POST /acknowledgements and /silences on the real api: site scope, roles, 202 with the
    command id, then the command's status once the alerting service applied it."""
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES.format(site="ariege"), encoding="utf-8")
    store = AlertStore(tmp_path / "alerts.sqlite")
    engine = Engine(config=load_alert_config(rules), store=store,
                    notifier=FallbackNotifier(notifiers=[Phone()]))
    service = AlertService(engine=engine, broker=broker_for("alerting"), tick_s=0.2,
                           client_id=f"alerting-api-{uuid.uuid4().hex[:6]}")
    broker = broker_for("api")
    settings = ApiSettings(
        site_configs=REPO / "firmware-config" / "sites", influx_url=influx.url,
        influx_db=influx.database, mqtt_host=broker.host, mqtt_port=broker.port,
        mqtt_username=broker.username, mqtt_password=broker.password,
        api_database_url=f"sqlite:///{tmp_path / 'api.sqlite3'}", api_rollup_interval_s=0,
        api_alert_db=tmp_path / "alerts.sqlite")
    gateway = _client(broker_for("test-gw"), "test-gw")
    service.start()
    app = create_app(settings)
    try:
        with TestClient(app, base_url="http://127.0.0.1/api/v1") as client:
            wait_until(service.connected.is_set, timeout_s=WAIT_S, what="the alerting service")
            wait_until(app.state.broker.connected.is_set, timeout_s=WAIT_S, what="the api's "
                       "broker connection")
            tokens = {}
            with app.state.sessions() as db:
                for name, role, site in (("ops", TokenRole.OPERATOR, "ariege"),
                                         ("eval", TokenRole.EVALUATOR, "ariege"),
                                         ("far", TokenRole.OPERATOR, "tarn")):
                    tokens[name] = {"Authorization": "Bearer " + create_token(
                        db, role=role, site=site, name=f"{name} token")}
            now_ms = int(time.time() * 1000)
            telemetry = Telemetry(site="ariege", gateway="test-gw", equipment="freezer",
                                  device="d", seq=1, ts=now_ms,
                                  readings=(Reading(sensor="freezer.leak", value=800.0,
                                                    unit=""),))
            gateway.publish(telemetry_topic("ariege", "test-gw", "freezer"), encode(telemetry),
                            qos=1).wait_for_publish(timeout=WAIT_S)
            wait_until(lambda: bool(store.open_alerts()), timeout_s=WAIT_S, what="the alert")
            [alert] = store.open_alerts()
            url = f"/sites/ariege/alerts/{alert.id}/acknowledgements"

            assert client.post(url, headers=tokens["eval"]).status_code == 403
            assert client.post(url, headers=tokens["far"]).status_code == 404
            assert client.post("/sites/ariege/alerts/999/acknowledgements",
                               headers=tokens["ops"]).status_code == 404
            response = client.post(url, json={"reason": "vu"}, headers=tokens["ops"])
            assert response.status_code == 202, response.text
            command_id = response.json()["command_id"]
            status_url = response.json()["status"].removeprefix("/api/v1")

            def status() -> dict[str, Any]:
                answer = client.get(status_url, headers=tokens["ops"])
                return dict(answer.json()) if answer.status_code == 200 else {}

            wait_until(lambda: bool(status()), timeout_s=WAIT_S, what="the command applied")
            assert {k: status()[k] for k in ("command_id", "action", "alert_id", "result",
                                             "requested_by", "via")} == {
                "command_id": command_id, "action": "ack", "alert_id": alert.id,
                "result": "applied", "requested_by": "token:ops-token", "via": "api"}
            [row] = client.get("/sites/ariege/alerts", headers=tokens["ops"]).json()
            assert (row["acknowledged_by"], row["acknowledged_via"]) == ("token:ops-token",
                                                                        "api")
            assert [(a["contact"], a["via"], a["text"]) for a in row["acks"]] == [
                ("token:ops-token", "api", "vu")]
            # Acknowledged already: refused here, nothing sent.
            assert client.post(url, headers=tokens["ops"]).status_code == 409

            body = {"equipment": "freezer", "minutes": 60, "reason": "dégivrage"}
            assert client.post("/sites/ariege/silences", json={**body, "reason": " "},
                               headers=tokens["ops"]).status_code == 422
            assert client.post("/sites/ariege/silences", json={**body, "equipment": "boiler"},
                               headers=tokens["ops"]).status_code == 404
            response = client.post("/sites/ariege/silences", json=body, headers=tokens["ops"])
            assert response.status_code == 202, response.text
            wait_until(lambda: bool(client.get("/sites/ariege/silences",
                                               headers=tokens["ops"]).json()),
                       timeout_s=WAIT_S, what="the silence applied")
            [silence] = client.get("/sites/ariege/silences", headers=tokens["ops"]).json()
            assert (silence["equipment"], silence["reason"], silence["created_by"],
                    silence["via"]) == ("freezer", "dégivrage", "token:ops-token", "api")
            # 60 minutes from the request, as the api computed it (to the second).
            until = datetime.fromisoformat(silence["until"]).timestamp()
            start = datetime.fromisoformat(silence["start"]).timestamp()
            assert abs(until - start - 3600) < 5
    finally:
        gateway.disconnect()
        gateway.loop_stop()
        service.stop()
        store.close()


def test_store_of_an_older_release_gains_the_new_columns(tmp_path: Path) -> None:
    """A store made before `via` existed keeps its rows; they read as SMS replies."""
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE acks (id INTEGER PRIMARY KEY AUTOINCREMENT, alert_id INTEGER,
            at_ms INTEGER NOT NULL, phone TEXT NOT NULL, contact TEXT, text TEXT NOT NULL,
            accepted INTEGER NOT NULL, reason TEXT NOT NULL);
        INSERT INTO acks (alert_id, at_ms, phone, contact, text, accepted, reason)
            VALUES (1, 5, '+33600000001', 'astreinte', 'OK 1', 1, '');
        CREATE TABLE silences (id INTEGER PRIMARY KEY AUTOINCREMENT, site TEXT NOT NULL,
            equipment TEXT NOT NULL, start_ms INTEGER NOT NULL, until_ms INTEGER NOT NULL,
            reason TEXT NOT NULL, created_by TEXT NOT NULL);
        INSERT INTO silences (site, equipment, start_ms, until_ms, reason, created_by)
            VALUES ('ariege', 'freezer', 0, 100, 'r', 'astreinte');
    """)
    db.commit()
    db.close()
    store = AlertStore(path)
    try:
        [ack] = store.acks()
        assert (ack.text, ack.via) == ("OK 1", "sms")
        silence = store.silence_at(site="ariege", equipment="freezer", at_ms=50)
        assert silence is not None and silence.via == "cli"
    finally:
        store.close()
    AlertStore(path).close()  # opening again changes nothing
