"""Edge alerting, end to end on real processes: the freezer simulator → the real gateway
(`dynamo gateway run`, mirroring to its local Mosquitto) → the edge process (`dynamo alerts
edge`) → gammu-smsd on a dummy phone (the Pi's modem); and the central Mosquitto → the central
alerting service → its own gammu-smsd dummy phone.

One run, three acts: uplink up (the central engine pages, the edge does not); the central
broker stopped (the edge pages the door opening through the Pi's modem, in French); the broker
back (the central engine adopts the edge's alert: no second firing SMS, one resolution SMS).
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alertkit import running_smsd

from alerting.edge import EdgeAlerting, edge_rules
from alerting.engine import Engine
from alerting.gammu import GammuNotifier, SmsdPaths, read_sent, write_smsd_config
from alerting.notifier import FallbackNotifier
from alerting.rules import load_alert_config
from alerting.service import AlertService
from alerting.store import AlertStore
from dynamo.devservices import MosquittoProcess, wait_until
from simulators import run_in_thread
from simulators.freezer import FreezerModel
from telemetry.loader import load_gateway_config
from telemetry.site import Broker

REPO = Path(__file__).resolve().parents[2]
FREEZER = REPO / "firmware-config" / "sites" / "ariege" / "freezer.yaml"
ACL = REPO / "firmware-config" / "broker" / "acl"
DOOR = "Porte de la cellule ouverte"


def _handed(paths: SmsdPaths) -> dict[str, str]:
    """Every SMS given to gammu-smsd: still queued, sent by the modem, or failed."""
    return {**read_sent(paths.outbox), **read_sent(paths.sent), **read_sent(paths.error)}


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def test_edge_keeps_its_own_equipment_rules_and_needs_the_mirror(tmp_path: Path) -> None:
    config = load_alert_config(REPO / "firmware-config" / "alerts" / "ariege.yaml")
    gateway = load_gateway_config(FREEZER)
    kept = {rule.id for rule in edge_rules(config, gateway).rules}
    assert kept and all(rule_id.startswith("freezer-") for rule_id in kept)
    assert "freezer-gateway-offline" not in kept  # the central engine's: it sees the outage
    with pytest.raises(ValueError, match="mirror_to_local"):
        modem = write_smsd_config(directory=tmp_path, device="/dev/ttyUSB0")
        EdgeAlerting(config=config, gateway=gateway, store=AlertStore(tmp_path / "e.sqlite"),
                     notifier=FallbackNotifier(notifiers=[GammuNotifier(config=modem.config)]))


def test_edge_pages_while_the_uplink_is_down_and_hands_over(tmp_path: Path) -> None:
    users = {u: secrets.token_urlsafe(12) for u in ("alerting", "freezer-gw")}
    central = MosquittoProcess(workdir=tmp_path / "central", users=users, acl_file=ACL)
    local = MosquittoProcess(workdir=tmp_path / "local",
                             users={"freezer-gw": users["freezer-gw"]}, acl_file=ACL)
    gateway_file = tmp_path / "freezer.yaml"
    # Text edits: the file keeps its ${ENV} references for the gateway and the edge to expand.
    text = FREEZER.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^template_dirs: .*$",
                  f"template_dirs: [{REPO / 'firmware-config' / 'templates'}]", text)
    text = re.sub(r"poll_interval_s: [0-9.]+", "poll_interval_s: 1", text)
    text += (f"\nlocal_broker: {{host: 127.0.0.1, port: {local.port}, username: freezer-gw,"
             f" password: \"{users['freezer-gw']}\"}}\nmirror_to_local: true\n")
    gateway_file.write_text(text, encoding="utf-8")
    rules = tmp_path / "alerts.yaml"
    rules.write_text(f"""site: ariege
site_configs: [{gateway_file}]
contacts: [{{id: astreinte, name: Astreinte, phone: "+33600000001"}}]
defaults: {{contacts: [astreinte], repeat_every_min: 0, escalate_after_min: 0}}
edge_gateways: [freezer-gw]
edge_handover_s: 5
rules:
  - {{id: door, name: "{DOOR}", kind: state, equipment: freezer, role: door_open}}
""", encoding="utf-8")
    env = {**os.environ, "DYNAMO_MQTT_HOST": central.host, "DYNAMO_MQTT_PORT": str(central.port),
           "DYNAMO_MQTT_PASSWORD_FREEZER_GW": users["freezer-gw"],
           "DYNAMO_SPOOL_DIR": str(tmp_path / "spool"), "DYNAMO_RAM_DIR": str(tmp_path / "ram")}
    central.start()
    local.start()
    sims = run_in_thread(machines=("freezer",), speed=1.0, seed=5)
    env.update(sims.env())
    freezer = sims.models["freezer"]
    assert isinstance(freezer, FreezerModel)
    processes: list[subprocess.Popen[bytes]] = []

    def spawn(name: str, *args: str) -> Path:
        log_file = tmp_path / f"{name}.log"
        with log_file.open("wb") as log:
            processes.append(subprocess.Popen([sys.executable, "-m", "dynamo", *args], env=env,
                                              stdout=log, stderr=subprocess.STDOUT))
        return log_file

    store = AlertStore(tmp_path / "central.sqlite")
    service: AlertService | None = None
    try:
        with running_smsd(tmp_path / "edge-modem") as edge_modem, \
                running_smsd(tmp_path / "central-modem") as central_modem:
            engine = Engine(config=load_alert_config(rules), store=store,
                            notifier=FallbackNotifier(
                                notifiers=[GammuNotifier(config=central_modem.config)]))
            service = AlertService(engine=engine, tick_s=0.2, session_expiry_s=600,
                                   client_id=f"alerting-{tmp_path.name}",
                                   broker=Broker(host=central.host, port=central.port,
                                                 username="alerting",
                                                 password=users["alerting"]))
            service.start()
            wait_until(service.connected.is_set, timeout_s=30, what="the central service")
            spawn("gateway", "gateway", "run", "--config", str(gateway_file))
            edge_log = spawn("edge", "alerts", "edge", "--rules", str(rules),
                             "--gateway-config", str(gateway_file),
                             "--db", str(tmp_path / "edge.sqlite"),
                             "--smsd-config", str(edge_modem.config), "--tick-s", "0.2")

            def uplink_at_edge(state: str) -> bool:
                for process in processes:
                    assert process.poll() is None, (tmp_path / "edge.log").read_text() + \
                        (tmp_path / "gateway.log").read_text()
                seen = re.findall(r"uplink (up|down|unknown):",
                                  edge_log.read_text(errors="replace"))
                return bool(seen) and seen[-1] == state

            wait_until(lambda: uplink_at_edge("up"), timeout_s=30,
                       what="the edge to see the uplink up")
            wait_until(lambda: service.counters.messages >= 5 and not store.open_alerts(),
                       timeout_s=30, what="telemetry at the central engine, door closed")

            # 1. Uplink up: the central engine pages; the edge only keeps track.
            freezer.open_door(duration_s=2.0)
            wait_until(lambda: len(_handed(central_modem)) == 2 and not store.open_alerts(),
                       timeout_s=30, what="the central firing and resolved SMS")
            assert _handed(edge_modem) == {}

            # 2. Uplink down: the edge pages through the gateway's modem.
            central.stop()
            wait_until(lambda: uplink_at_edge("down"), timeout_s=30,
                       what="the edge to see the uplink down")
            freezer.open_door(duration_s=25.0)
            wait_until(lambda: len(read_sent(edge_modem.sent)) == 1, timeout_s=30,
                       what="the edge's SMS sent by gammu-smsd")
            [text] = read_sent(edge_modem.sent).values()
            assert text.startswith("[DYNAMO]") and DOOR in text and "Répondez OK" in text, text

            # 3. Uplink back: the central engine adopts the edge's alert, the door still open.
            central.start()
            wait_until(lambda: any(a.extra.get("edge") == "freezer-gw"
                                   for a in store.open_alerts()),
                       timeout_s=40, what="the central engine to adopt the edge's alert")
            wait_until(lambda: not store.open_alerts(), timeout_s=40,
                       what="the door to close and the alert to resolve centrally")
            time.sleep(1.0)  # the handover window (5 s) has ended: nothing left to announce
            kinds = [n.kind for n in store.notifications()]
            assert kinds == ["firing", "resolved", "resolved"], kinds
            assert len(_handed(central_modem)) == 3
            assert len(_handed(edge_modem)) == 1  # the edge told no one of the resolution
    finally:
        if service is not None:
            service.stop()
        for process in processes:
            _stop(process)
        store.close()
        sims.stop()
        local.stop()
        central.stop()
