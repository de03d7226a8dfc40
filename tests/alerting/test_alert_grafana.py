"""Grafana's alert webhook payloads, POSTed over loopback, become SMS queued for gammu-smsd."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from alerting.engine import Engine
from alerting.gammu import GammuNotifier, read_sent, write_smsd_config
from alerting.grafana import GrafanaReceiver
from alerting.notifier import FallbackNotifier
from alerting.rules import load_alert_config
from alerting.store import AlertStore
from dynamo.devservices import MosquittoProcess, free_port

RULES = """site: ariege
contacts:
  - {id: astreinte, name: Astreinte, phone: "+33600000001"}
  - {id: energie, name: Référent énergie, phone: "+33600000009"}
defaults: {contacts: [astreinte]}
grafana: {notify: {contacts: [astreinte], repeat_every_min: 0, escalate_after_min: 0}}
"""


def payload(status: str, **labels: str) -> dict[str, object]:
    alert = {"status": status, "fingerprint": "c0ffee12", "startsAt": "2026-11-22T02:00:00Z",
             "labels": {"alertname": "DryerHighPower", **labels},
             "annotations": {"summary": "Séchoir : puissance anormale"},
             "values": {"B": 7420.0}}
    return {"receiver": "dynamo-sms", "status": status, "alerts": [alert],
            "commonLabels": {"alertname": "DryerHighPower"}, "version": "1"}


@pytest.fixture
def hook(tmp_path: Path) -> Iterator[tuple[GrafanaReceiver, Path]]:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES, encoding="utf-8")
    smsd = write_smsd_config(directory=tmp_path / "smsd", device=f"{tmp_path}/phone/",
                             model="dummy", connection="none")
    engine = Engine(config=load_alert_config(rules), store=AlertStore(tmp_path / "a.sqlite"),
                    notifier=FallbackNotifier(notifiers=[GammuNotifier(config=smsd.config)]))
    receiver = GrafanaReceiver(engine=engine, token="s3cret")
    receiver.start()
    yield receiver, smsd.outbox
    receiver.stop()


def post(receiver: GrafanaReceiver, body: object, token: str = "s3cret") -> httpx.Response:
    return httpx.post(receiver.url, json=body, headers={"Authorization": f"Bearer {token}"},
                      timeout=30)


def test_firing_then_resolved_webhook_sends_two_sms(hook: tuple[GrafanaReceiver, Path]) -> None:
    receiver, outbox = hook
    response = post(receiver, payload("firing", equipment="dryer", severity="critical"))
    assert response.status_code == 200 and response.json() == {"accepted": ["c0ffee12"]}
    [firing] = read_sent(outbox).values()
    assert "_+33600000001_" in next(iter(read_sent(outbox)))
    assert firing.startswith("[DYNAMO] ALERTE CRITIQUE n°1 – dryer : Séchoir : puissance "
                             "anormale. Valeur 7420 le ")
    post(receiver, payload("firing", equipment="dryer"))  # Grafana re-sends while firing
    assert len(read_sent(outbox)) == 1
    post(receiver, payload("resolved", equipment="dryer"))
    texts = sorted(read_sent(outbox).values())
    assert len(texts) == 2 and texts[1].startswith("[DYNAMO] Fin d'alerte n°1")


def test_labels_choose_the_contacts(hook: tuple[GrafanaReceiver, Path]) -> None:
    receiver, outbox = hook
    post(receiver, payload("firing", contacts="energie"))
    [name] = read_sent(outbox)
    assert "_+33600000009_" in name


def test_bad_requests_are_refused_and_counted(hook: tuple[GrafanaReceiver, Path]) -> None:
    receiver, outbox = hook
    assert post(receiver, payload("firing"), token="wrong").status_code == 401
    response = post(receiver, {"alerts": [{"status": "burning", "fingerprint": "x"}]})
    assert response.status_code == 400 and "alerts.0.status" in response.json()["error"]
    assert receiver.refused == 2 and receiver.accepted == 0
    assert read_sent(outbox) == {}


def test_dynamo_alerts_run_routes_grafana_and_stops_cleanly(
        tmp_path: Path, mosquitto: MosquittoProcess) -> None:
    """The command as deployed: its own process, notifiers from the file, Grafana port on."""
    smsd = write_smsd_config(directory=tmp_path / "smsd", device=f"{tmp_path}/phone/",
                             model="dummy", connection="none")
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES + f"notifiers: [{{type: gammu, smsd_config: {smsd.config}}}]\n",
                     encoding="utf-8")
    port = free_port()
    env = {**os.environ, "DYNAMO_MQTT_HOST": mosquitto.host,
           "DYNAMO_MQTT_PORT": str(mosquitto.port), "DYNAMO_MQTT_USERNAME": "alerting",
           "DYNAMO_MQTT_PASSWORD": mosquitto.users["alerting"],
           "DYNAMO_GRAFANA_WEBHOOK_TOKEN": "s3cret"}
    log = (tmp_path / "alerts.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "dynamo", "alerts", "run", "--rules", str(rules), "--db",
         str(tmp_path / "alerts.sqlite"), "--no-annotations", "--grafana-port", str(port),
         "--client-id", f"alerting-{tmp_path.name}"], env=env, stdout=log,
        stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "alerts.log").read_text()
            try:
                response = httpx.post(f"http://127.0.0.1:{port}/grafana",
                                      json=payload("firing"), timeout=10,
                                      headers={"Authorization": "Bearer s3cret"})
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the Grafana endpoint never listened"
                time.sleep(0.3)
        assert response.status_code == 200
        [text] = read_sent(smsd.outbox).values()
        assert "Séchoir : puissance anormale" in text
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        log.close()
    assert code == 0
