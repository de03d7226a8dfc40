"""Last will, end to end: `kill -9` of a real `dynamo gateway run` process → Mosquitto publishes
its retained `offline` status within 1.5 × keepalive → the collector records it in InfluxDB →
the central alerting sends the "passerelle hors ligne" SMS through gammu-smsd's dummy phone,
and counts it on its /metrics.

On one machine `kill -9` closes the process's socket, so the broker sees the connection end at
once. A power cut or a cut cable closes nothing: the broker only notices by the keepalive. The
`SIGSTOP` case freezes the process with its connection open, which is that case."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from alerting.engine import Engine
from alerting.gammu import GammuNotifier
from alerting.metrics import registry_for
from alerting.notifier import FallbackNotifier
from alerting.rules import load_alert_config
from alerting.service import AlertService
from alerting.store import AlertStore
from collector import Collector, DeadLetterStore
from dynamo.devservices import MosquittoProcess, free_port, stop_processes, wait_until
from telemetry.influx.client import InfluxClient
from telemetry.metrics import serve_registry
from telemetry.mqtt import connect, make_client
from telemetry.site import Broker
from telemetry.topics import status_topic

REPO = Path(__file__).resolve().parents[2]
KEEPALIVE_S = 5  # the smallest a configuration accepts (telemetry/site.py)
# Mosquitto disconnects a client 1.5 × keepalive after the last packet it received from it,
# which was at or before the signal; the extra second is a loaded machine's scheduling.
OFFLINE_WITHIN_S = 1.5 * KEEPALIVE_S + 1.0
# Mosquitto 2.0 (Debian 12 ships 2.0.11) finds a silent client by a scan of every client that
# runs when `last_check + 5 < now`, i.e. every 6 s, and expires it once `now - last_packet >
# keepalive * 3 / 2` in whole seconds (src/keepalive.c, docs/sources.md#mosquitto-keepalive):
# up to keepalive * 3 // 2 + 2 s after its last packet, plus up to 6 s until the next scan
# (measured: 9.5 s with a 5 s keepalive), plus a loaded machine's second.
FROZEN_OFFLINE_WITHIN_S = KEEPALIVE_S * 3 // 2 + 2 + 6 + 1.0


def _gateway_config(path: Path, *, site: str, broker: Broker, spool: Path) -> Path:
    """Gateway `test-gw` with one meter nobody answers for: no Modbus needed for a last will."""
    config = {
        "template_dirs": [str(REPO / "firmware-config" / "templates")],
        "site": site, "gateway": "test-gw", "spool_dir": str(spool),
        "broker": {"host": broker.host, "port": broker.port, "username": broker.username,
                   "password": broker.password, "keepalive_s": KEEPALIVE_S},
        "equipment": [{"id": "rig", "kind": "other"}],
        "devices": [{
            "id": "meter", "template": "eastron-sdm120", "equipment": "rig",
            "connection": {"type": "tcp", "host": "127.0.0.1", "port": free_port()},
            "unit_id": 1, "poll_interval_s": 1, "timeout_s": 0.5, "retries": 0,
            "backoff_max_s": 1,
            "sensors": [{"id": "rig.power", "point": "total_power_w",
                         "role": "electric_power"}]}],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


class StatusWatch:
    """Every status of one gateway, with the monotonic time it arrived."""

    def __init__(self, broker: Broker, topic: str) -> None:
        self.seen: list[tuple[float, dict[str, Any]]] = []
        self.subscribed = threading.Event()
        self.client = make_client(broker=broker, client_id=f"watch-{uuid.uuid4().hex[:6]}")
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._received
        connect(self.client, broker)

    def _received(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        if message.payload:
            self.seen.append((time.monotonic(), json.loads(message.payload)))

    def first(self, state: str, after: float = 0.0) -> float | None:
        return next((t for t, s in self.seen if s["state"] == state and t >= after), None)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["kill-9", "frozen"])
def test_dead_gateway_goes_offline_is_recorded_and_paged(
        sig: signal.Signals, tmp_path: Path, smsd: Any, mosquitto: MosquittoProcess,
        broker_for: Callable[[str], Broker], influx: InfluxClient) -> None:
    site = f"w{uuid.uuid4().hex[:8]}"
    rules = tmp_path / "alerts.yaml"
    rules.write_text(f"""site: {site}
contacts: [{{id: astreinte, name: Astreinte, phone: "+33600000002"}}]
defaults: {{contacts: [astreinte], repeat_every_min: 0, escalate_after_min: 0}}
rules:
  - {{id: offline, name: Passerelle de test hors ligne, kind: no_data, equipment: rig,
     gateway: test-gw, after_min: 0.01}}
""", encoding="utf-8")
    store = AlertStore(tmp_path / "alerts.sqlite")
    engine = Engine(config=load_alert_config(rules), store=store,
                    notifier=FallbackNotifier(notifiers=[GammuNotifier(config=smsd.paths.config)]))
    alerting = AlertService(engine=engine, broker=broker_for("alerting"), tick_s=0.2,
                            client_id=f"alerting-{site}")
    metrics_port = free_port()
    stop_metrics = serve_registry(registry_for(alerting), port=metrics_port)
    collector = Collector(broker=broker_for("collector"), influx=influx, site=site,
                          dead_letters=DeadLetterStore(tmp_path / "dead.sqlite"),
                          client_id=f"collector-{site}", flush_interval_s=0.05,
                          status_interval_s=3600)
    watch = StatusWatch(broker_for("collector"), status_topic(site, "test-gw"))
    config = _gateway_config(tmp_path / "gw.yaml", site=site, broker=broker_for("test-gw"),
                             spool=tmp_path / "spool")
    log = (tmp_path / "gateway.log").open("wb")
    gateway: subprocess.Popen[bytes] | None = None
    try:
        collector.start()
        alerting.start()
        assert collector.connected.wait(15)
        wait_until(alerting.connected.is_set, timeout_s=30, what="the alerting service")
        wait_until(watch.subscribed.is_set, timeout_s=30, what="the status watch")
        gateway = subprocess.Popen(
            [sys.executable, "-m", "dynamo", "gateway", "run", "--config", str(config),
             "--metrics-port", "0"], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: watch.first("online") is not None, timeout_s=60,
                   what="the gateway's birth (online) status")
        wait_until(lambda: alerting.counters.evaluations >= 1, timeout_s=30,
                   what="the alerting service to see the gateway online")
        assert store.open_alerts() == []

        gateway.send_signal(sig)
        killed = time.monotonic()
        wait_until(lambda: watch.first("offline", after=killed) is not None,
                   timeout_s=FROZEN_OFFLINE_WITHIN_S + 30, what="the broker's last will")
        offline_after = (watch.first("offline", after=killed) or 0) - killed
        within = OFFLINE_WITHIN_S if sig is signal.SIGKILL else FROZEN_OFFLINE_WITHIN_S
        assert offline_after <= within, \
            f"offline {offline_after:.1f} s after the signal (keepalive {KEEPALIVE_S} s)"
        if sig is signal.SIGSTOP:
            # Found by the keepalive, not by a closed socket: its last packet was at most one
            # keepalive before the freeze, so the broker waited at least 1.5 - 1 = 0.5 of one.
            assert offline_after >= 0.5 * KEEPALIVE_S - 0.5, offline_after

        def recorded_offline() -> bool:
            series = influx.query(f"SELECT last(online) FROM gateway_status WHERE site = "
                                  f"'{site}' AND gateway = 'test-gw'")
            return bool(series) and series[0].rows()[0]["last"] == 0

        wait_until(recorded_offline, timeout_s=30, what="the collector to record it offline")

        def paged() -> list[str]:
            return [t for t in smsd.sent().values() if "Passerelle de test hors ligne" in t]

        wait_until(lambda: bool(paged()), timeout_s=60, what="the gateway-offline SMS")
        assert paged()[0].startswith("[DYNAMO] Alerte n°")
        wait_until(lambda: _sent(metrics_port) == 1, timeout_s=15,
                   what="the SMS counted on the alerting service's /metrics")
    finally:
        if gateway is not None:
            gateway.send_signal(signal.SIGKILL)  # a frozen process ignores SIGTERM
            stop_processes([gateway])
        log.close()
        watch.client.publish(status_topic(site, "test-gw"), b"", qos=1, retain=True)
        watch.client.disconnect()
        watch.client.loop_stop()
        alerting.stop()
        collector.stop()
        stop_metrics and stop_metrics()
        store.close()


def _sent(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(s.value for family in text_string_to_metric_families(text)
               for s in family.samples
               if s.name == "dynamo_alerting_notifications_total"
               and s.labels == {"notifier": "gammu", "result": "sent"})
