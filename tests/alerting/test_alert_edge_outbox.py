"""The edge's events survive a restart during the uplink outage: real local and central
Mosquitto, the edge process's `EdgeAlerting` in this process, its SQLite store.

The gateway's part (its uplink state and its mirrored polls on the local broker) is played by
publishing what the gateway publishes; the modem by a phone that records what it is given.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from alertkit import Phone

from alerting.edge import EdgeAlerting
from alerting.events import decode_event
from alerting.notifier import FallbackNotifier
from alerting.rules import load_alert_config
from alerting.store import AlertStore
from dynamo.devservices import MosquittoProcess, wait_until
from telemetry.loader import load_gateway_config
from telemetry.mqtt import connect, make_client
from telemetry.payload import Reading, Telemetry, Uplink, encode
from telemetry.site import Broker
from telemetry.topics import telemetry_topic, uplink_topic

REPO = Path(__file__).resolve().parents[2]
FREEZER = REPO / "firmware-config" / "sites" / "ariege" / "freezer.yaml"
ACL = REPO / "firmware-config" / "broker" / "acl"


def _client(broker: Broker, client_id: str) -> mqtt.Client:
    client = make_client(broker=broker, client_id=client_id)
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    connect(client, broker)
    assert connected.wait(15), f"{client_id} could not connect"
    return client


def _door(open_: float, seq: int) -> bytes:
    return encode(Telemetry(site="ariege", gateway="freezer-gw", equipment="freezer",
                            device="ctl", seq=seq, ts=int(time.time() * 1000),
                            readings=(Reading(sensor="freezer.door_open", value=open_),)))


def test_events_of_an_outage_reach_the_central_broker_after_an_edge_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    users = {u: secrets.token_urlsafe(12) for u in ("alerting", "freezer-gw")}
    central = MosquittoProcess(workdir=tmp_path / "central", users=users, acl_file=ACL)
    local = MosquittoProcess(workdir=tmp_path / "local",
                             users={"freezer-gw": users["freezer-gw"]}, acl_file=ACL)
    monkeypatch.setenv("DYNAMO_MQTT_HOST", central.host)
    monkeypatch.setenv("DYNAMO_MQTT_PORT", str(central.port))
    monkeypatch.setenv("DYNAMO_MQTT_PASSWORD_FREEZER_GW", users["freezer-gw"])
    text = FREEZER.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^template_dirs: .*$",
                  f"template_dirs: [{REPO / 'firmware-config' / 'templates'}]", text)
    text += (f"\nlocal_broker: {{host: 127.0.0.1, port: {local.port}, username: freezer-gw,"
             f" password: \"{users['freezer-gw']}\"}}\nmirror_to_local: true\n")
    (tmp_path / "freezer.yaml").write_text(text, encoding="utf-8")
    gateway = load_gateway_config(tmp_path / "freezer.yaml")
    assert gateway.local_broker is not None
    rules = tmp_path / "alerts.yaml"
    rules.write_text("""site: ariege
contacts: [{id: astreinte, name: Astreinte, phone: "+33600000001"}]
defaults: {contacts: [astreinte], repeat_every_min: 0, escalate_after_min: 0}
edge_gateways: [freezer-gw]
rules:
  - {id: door, name: Porte ouverte, kind: state, equipment: freezer, sensor: freezer.door_open}
""", encoding="utf-8")
    config = load_alert_config(rules)
    phone = Phone()

    def edge() -> EdgeAlerting:
        return EdgeAlerting(config=config, gateway=gateway,
                            store=AlertStore(tmp_path / "edge.sqlite"),
                            notifier=FallbackNotifier(notifiers=[phone]), tick_s=0.2)

    local.start()
    mirror = _client(gateway.local_broker, "the-gateway-mirror")
    try:
        # The central broker is down: the gateway says so on its local broker (retained).
        mirror.publish(uplink_topic("ariege", "freezer-gw"),
                       encode(Uplink(site="ariege", gateway="freezer-gw", state="down",
                                     ts=int(time.time() * 1000))), qos=1, retain=True)
        first = edge()
        first.start()
        try:
            wait_until(lambda: first.uplink == "down", timeout_s=15, what="the edge to see down")
            topic = telemetry_topic("ariege", "freezer-gw", "freezer")
            mirror.publish(topic, _door(1, 1), qos=1)
            wait_until(lambda: len(phone.sent) == 1, timeout_s=15, what="the firing SMS")
            mirror.publish(topic, _door(0, 2), qos=1)
            wait_until(lambda: len(phone.sent) == 2, timeout_s=15, what="the resolution SMS")
            # Both events wait in the outbox: no broker has confirmed them.
            wait_until(lambda: len(first.engine.store.outbox()) == 2, timeout_s=5,
                       what="two events in the outbox")
        finally:
            first.stop()  # paho's queue goes with the process, as in a power cut

        central.start()
        received: list[bytes] = []
        watcher = _client(Broker(host=central.host, port=central.port, username="alerting",
                                 password=users["alerting"]), "central-watcher")
        watcher.on_message = lambda _c, _u, message: received.append(bytes(message.payload))
        subscribed = threading.Event()
        watcher.on_subscribe = lambda *_: subscribed.set()
        watcher.subscribe("dynamo/v1/ariege/freezer-gw/events/+", qos=1)
        assert subscribed.wait(15)

        second = edge()
        second.start()
        try:
            wait_until(lambda: len(received) >= 2, timeout_s=20,
                       what="the outage's events at the central broker")
            events = [decode_event(payload) for payload in received]
            assert [(e.event, e.rule, e.subject) for e in events] == [
                ("fired", "door", "freezer.door_open"), ("resolved", "door", "freezer.door_open")]
            wait_until(lambda: second.engine.store.outbox() == [], timeout_s=10,
                       what="the confirmed events to leave the outbox")
            assert len(phone.sent) == 2  # a restart sends no SMS again
        finally:
            second.stop()
        watcher.disconnect()
        watcher.loop_stop()
    finally:
        mirror.disconnect()
        mirror.loop_stop()
        local.stop()
        central.stop()
