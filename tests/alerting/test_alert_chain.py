"""End to end: the freezer simulator's door opens → real gateway process → Mosquitto →
alerting service → gammu-smsd's dummy phone sends the French SMS; a reply "OK n" acknowledges;
the door closes → the end-of-alert SMS; the events are in InfluxDB as annotations."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alerting.annotations import InfluxAnnotations
from alerting.engine import Engine
from alerting.gammu import GammuInbox, GammuNotifier, drop_inbound_sms
from alerting.notifier import FallbackNotifier
from alerting.rules import load_alert_config
from alerting.service import AlertService
from alerting.store import AlertStore
from dynamo.devservices import MosquittoProcess, stop_processes, wait_until
from simulators import run_in_thread
from telemetry.influx.client import InfluxClient
from telemetry.site import Broker

REPO = Path(__file__).resolve().parents[2]
FREEZER = REPO / "firmware-config" / "sites" / "ariege" / "freezer.yaml"
ASTREINTE = "+33611223344"


def test_door_left_open_reaches_the_phone_and_a_reply_acknowledges(
        tmp_path: Path, smsd: Any, mosquitto: MosquittoProcess,
        broker_for: Callable[[str], Broker], influx: InfluxClient) -> None:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(f"""site: ariege
site_configs: [{FREEZER}]
contacts: [{{id: astreinte, name: Astreinte, phone: "{ASTREINTE}"}}]
defaults: {{contacts: [astreinte], repeat_every_min: 0, escalate_after_min: 0}}
rules:
  - {{id: freezer-door-open, name: Porte de la cellule ouverte, kind: state,
     equipment: freezer, role: door_open, for_min: 0.1}}
""", encoding="utf-8")
    config = load_alert_config(rules)
    store = AlertStore(tmp_path / "alerts.sqlite")
    engine = Engine(config=config, store=store,
                    notifier=FallbackNotifier(notifiers=[GammuNotifier(config=smsd.paths.config)]),
                    on_event=InfluxAnnotations(influx=influx))
    service = AlertService(engine=engine, broker=broker_for("alerting"),
                           inbox=GammuInbox(inbox=smsd.paths.inbox),
                           client_id=f"alerting-{tmp_path.name}")
    sims = run_in_thread(machines=("freezer",), speed=1.0, seed=3)
    env = {**os.environ, **sims.env(), "DYNAMO_MQTT_HOST": mosquitto.host,
           "DYNAMO_MQTT_PORT": str(mosquitto.port),
           "DYNAMO_MQTT_PASSWORD_FREEZER_GW": mosquitto.users["freezer-gw"],
           "DYNAMO_SPOOL_DIR": str(tmp_path / "spool"), "DYNAMO_RAM_DIR": str(tmp_path / "ram")}
    log = (tmp_path / "gateway.log").open("wb")
    gateway = subprocess.Popen([sys.executable, "-m", "dynamo", "gateway", "run", "--config",
                                str(FREEZER)], env=env, stdout=log, stderr=subprocess.STDOUT)
    service.start()
    try:
        wait_until(service.connected.is_set, timeout_s=30, what="the alerting service")
        wait_until(lambda: service.counters.messages >= 3, timeout_s=60,
                   what="the gateway's telemetry at the alerting service")
        assert smsd.sent() == {}, "door closed: nothing must be sent yet"
        sims.models["freezer"].open_door(duration_s=40)

        # A long text goes as linked parts, one file each: wait for the whole of it.
        def firing() -> list[str]:
            return [t for t in smsd.sent().values() if t.endswith("pour acquitter.")]

        wait_until(lambda: bool(firing()), timeout_s=60,
                   what="the firing SMS sent by gammu-smsd")
        [text] = firing()
        [history] = store.history()
        alert_id = history.alert.id
        assert text.startswith(f"[DYNAMO] Alerte n°{alert_id} – Cellule de surgélation : "
                               "Porte de la cellule ouverte. Valeur 1 le ")
        assert text.endswith(f"Répondez OK {alert_id} pour acquitter.")

        now = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        drop_inbound_sms(phone_dir=smsd.phone, number=ASTREINTE, text=f"Ok {alert_id}",
                         sent_utc=now)
        wait_until(lambda: store.get(alert_id).acked_by == "astreinte",
                   timeout_s=60, what="the acknowledgement by SMS reply")
        [ack] = store.acks(alert_id=alert_id)
        assert (ack.accepted, ack.phone, ack.text) == (True, ASTREINTE, f"Ok {alert_id}")

        wait_until(lambda: store.get(alert_id).state == "resolved",
                   timeout_s=90, what="the door to close and the alert to resolve")
        wait_until(lambda: any(t.startswith(f"[DYNAMO] Fin d'alerte n°{alert_id}")
                               for t in smsd.sent().values()),
                   timeout_s=30, what="the end-of-alert SMS")
        kinds = [n.kind for n in store.notifications(alert_id=alert_id)]
        assert kinds == ["firing", "ack", "resolved"]
        assert all(n.result == "sent" and n.notifier == "gammu"
                   for n in store.notifications(alert_id=alert_id))
        # The modem's own word: gammu-smsd moved each file to its sent folder.
        wait_until(lambda: all(n.outcome == "sent_by_modem"
                               for n in store.notifications(alert_id=alert_id)),
                   timeout_s=30, what="gammu-smsd to report every SMS sent")

        series = influx.query("SELECT alert_id, title FROM alert_events GROUP BY event")
        events = {s.tags["event"]: s.rows() for s in series}
        assert set(events) == {"fired", "acknowledged", "resolved"}
        assert events["fired"][0]["alert_id"] == alert_id
    finally:
        service.stop()
        stop_processes([gateway])
        log.close()
        sims.stop()
        store.close()
