"""The MQTT side on a real Mosquitto: user `alerting` reads the telemetry and status stream; a
malformed message is counted and skipped, and the next good one still raises the alert."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt

from alerting.engine import AlertEvent, Engine
from alerting.gammu import GammuNotifier, SmsdPaths, read_sent, write_smsd_config
from alerting.notifier import FallbackNotifier
from alerting.rules import load_alert_config
from alerting.service import AlertService
from alerting.store import AlertStore
from dynamo.devservices import wait_until
from telemetry.mqtt import connect, make_client
from telemetry.payload import Reading, Status, Telemetry, encode
from telemetry.site import Broker
from telemetry.topics import status_topic, telemetry_topic

RULES = """site: ariege
contacts: [{id: astreinte, name: Astreinte, phone: "+33600000001"}]
defaults: {contacts: [astreinte], repeat_every_min: 0, escalate_after_min: 0}
rules:
  - {id: leak, name: Fuite R290, kind: threshold, equipment: freezer, sensor: freezer.leak,
     above: 500, clear: 200}
  - {id: offline, name: Passerelle de test hors ligne, kind: no_data, equipment: freezer,
     gateway: test-gw, after_min: 0.01}
"""


def _engine(tmp_path: Path, on_event: Callable[[AlertEvent], None] | None = None,
            ) -> tuple[Engine, SmsdPaths]:
    """An engine on RULES with its own store, notifying through gammu-smsd files (no daemon)."""
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES, encoding="utf-8")
    smsd = write_smsd_config(directory=tmp_path / "smsd", device=f"{tmp_path}/phone/",
                             model="dummy", connection="none")
    engine = Engine(config=load_alert_config(rules), store=AlertStore(tmp_path / "a.sqlite"),
                    notifier=FallbackNotifier(notifiers=[GammuNotifier(config=smsd.config)]),
                    on_event=on_event)
    return engine, smsd


def _start(service: AlertService, publisher: mqtt.Client) -> None:
    """Start the service once the test gateway is connected and has cleared the retained status
    another test may have left for test-gw."""
    wait_until(publisher.is_connected, timeout_s=30, what="the test gateway")
    publisher.publish(status_topic("ariege", "test-gw"), b"", qos=1,
                      retain=True).wait_for_publish(timeout=30)
    service.start()
    wait_until(service.connected.is_set, timeout_s=30, what="the alerting service")


def test_stream_with_a_malformed_message(tmp_path: Path,
                                         broker_for: Callable[[str], Broker]) -> None:
    sinks: list[Callable[[AlertEvent], None]] = []
    engine, smsd = _engine(tmp_path, on_event=lambda event: [sink(event) for sink in sinks]
                           and None)
    store = engine.store
    service = AlertService(engine=engine, broker=broker_for("alerting"), tick_s=0.2,
                           client_id=f"alerting-{tmp_path.name}")
    sinks.append(service.publish_event)
    events: list[dict[str, object]] = []
    watcher = make_client(broker=broker_for("api"), client_id=f"watch-{tmp_path.name}")
    watcher.on_message = lambda _c, _u, message: events.append(json.loads(message.payload))
    watcher.on_connect = lambda client, *_: client.subscribe(
        "dynamo/v1/ariege/alerting/events/+", qos=1)
    subscribed = threading.Event()
    watcher.on_subscribe = lambda *_: subscribed.set()
    connect(watcher, broker_for("api"))
    publisher = make_client(broker=broker_for("test-gw"), client_id=f"gw-{tmp_path.name}")
    connect(publisher, broker_for("test-gw"))
    try:
        _start(service, publisher)
        wait_until(subscribed.is_set, timeout_s=30, what="the events watcher's subscription")
        topic = telemetry_topic("ariege", "test-gw", "freezer")
        publisher.publish(topic, b'{"v": 1, "site": "ariege", "readings": "oops"}', qos=1)
        good = Telemetry(site="ariege", gateway="test-gw", equipment="freezer", device="det",
                         seq=1, ts=int(time.time() * 1000),
                         readings=(Reading(sensor="freezer.leak", value=812.0, unit="ppm"),))
        publisher.publish(topic, encode(good), qos=1).wait_for_publish(timeout=30)
        wait_until(lambda: bool(read_sent(smsd.outbox)), timeout_s=30, what="the leak SMS")
        assert service.counters.malformed == 1
        [text] = read_sent(smsd.outbox).values()
        assert "Fuite R290" in text and "Valeur 812 ppm" in text
        # The change is announced on the events channel as the pseudo-gateway `alerting`.
        wait_until(lambda: bool(events), timeout_s=30, what="the alert event on MQTT")
        assert {k: events[0][k] for k in ("gateway", "equipment", "event", "rule", "value")} \
            == {"gateway": "alerting", "equipment": "freezer", "event": "fired", "rule": "leak",
                "value": 812.0}

        # The broker's retained last will: the gateway is offline.
        offline = Status(site="ariege", gateway="test-gw", state="offline")
        publisher.publish(status_topic("ariege", "test-gw"), encode(offline), qos=1,
                          retain=True).wait_for_publish(timeout=30)
        wait_until(lambda: len(read_sent(smsd.outbox)) == 2, timeout_s=30,
                   what="the gateway-offline SMS")
        assert any("Passerelle de test hors ligne" in t for t in read_sent(smsd.outbox).values())
    finally:
        publisher.publish(status_topic("ariege", "test-gw"), b"", qos=1, retain=True)
        publisher.disconnect()
        publisher.loop_stop()
        watcher.disconnect()
        watcher.loop_stop()
        service.stop()
        store.close()


def test_gateway_alert_event_is_adopted_over_mqtt(tmp_path: Path,
                                                  broker_for: Callable[[str], Broker]) -> None:
    engine, smsd = _engine(tmp_path)
    store = engine.store
    service = AlertService(engine=engine, broker=broker_for("alerting"), tick_s=0.2,
                           client_id=f"alerting-{tmp_path.name}")
    publisher = make_client(broker=broker_for("test-gw"), client_id=f"gw-{tmp_path.name}")
    connect(publisher, broker_for("test-gw"))
    try:
        _start(service, publisher)
        now_ms = int(time.time() * 1000)
        edge = {"v": 1, "type": "alert", "site": "ariege", "gateway": "test-gw",
                "equipment": "freezer", "ts": now_ms - 60_000, "event": "fired", "alert_id": 3,
                "rule": "leak", "subject": "freezer.leak", "severity": "warning",
                "name": "Fuite R290", "value": 640.0, "unit": "ppm", "detail": ""}
        events = "dynamo/v1/ariege/test-gw/events/freezer"
        publisher.publish(events, b"not json", qos=1)
        publisher.publish(events, json.dumps(edge).encode(), qos=1)
        good = Telemetry(site="ariege", gateway="test-gw", equipment="freezer", device="det",
                         seq=1, ts=now_ms, readings=(Reading(sensor="freezer.leak", value=700.0,
                                                             unit="ppm"),))
        publisher.publish(telemetry_topic("ariege", "test-gw", "freezer"), encode(good),
                          qos=1).wait_for_publish(timeout=30)
        wait_until(lambda: any(a.value == 700.0 for a in store.open_alerts()), timeout_s=30,
                   what="the leak reading evaluated")
        [alert] = store.open_alerts()
        assert (alert.rule_id, alert.extra, alert.value) == ("leak", {"edge": "test-gw"}, 700.0)
        assert service.counters.malformed == 1
        service.engine.tick()
        assert read_sent(smsd.outbox) == {}  # the gateway's modem already told them
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        service.stop()
        store.close()
