"""Hay case, end to end: the dryer simulator's heating bale crosses 40, 60 and 80 °C → the real
gateway process polls the barn's probes → Mosquitto → the alerting service with the shipped
stored-hay rules (their delays shortened) → gammu-smsd's dummy phone sends, at each level, the
French SMS that names the probe's place and says what to do, after the rule's delay."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerting.engine import Engine
from alerting.gammu import GammuNotifier
from alerting.notifier import FallbackNotifier
from alerting.rules import load_alert_config
from alerting.service import AlertService
from alerting.store import AlertStore
from dynamo.devservices import MosquittoProcess, stop_processes, wait_until
from simulators import DryerModel, run_in_thread
from simulators.barn import HEATING_PROBE
from telemetry.site import Broker

pytestmark = pytest.mark.timeout(180)

REPO = Path(__file__).resolve().parents[2]
DRYER = REPO / "firmware-config" / "sites" / "ariege" / "dryer.yaml"
SHIPPED = REPO / "firmware-config" / "alerts" / "ariege.yaml"
PHONES = {"astreinte": "+33611223301", "responsable": "+33611223302", "petr": "+33611223303"}
LEVELS = {"forage-watch": 40.0, "forage-danger": 60.0, "forage-fire": 80.0}
DELAY_SCALE = 1 / 200  # the shipped 10 / 5 / 1 min become 3 / 1.5 / 0.3 s
HEATING_S = 25.0  # the bale's whole rise, in (simulated = wall, speed 1) seconds
LATE_S = 15.0  # a poll (1 s), MQTT, the engine's tick and a loaded machine


def _site_config(tmp_path: Path) -> Path:
    """The shipped dryer configuration, its controller (the probes) polled every second."""
    text = DRYER.read_text(encoding="utf-8").replace(
        "template_dirs: [../../templates]",
        f"template_dirs: [{REPO / 'firmware-config' / 'templates'}]")
    controller = text.index("- id: dryer-controller")
    head, tail = text[:controller], text[controller:]
    assert "poll_interval_s: 10" in tail
    out = tmp_path / "dryer.yaml"
    out.write_text(head + tail.replace("poll_interval_s: 10", "poll_interval_s: 1", 1),
                   encoding="utf-8")
    return out


def _rules(tmp_path: Path, site_config: Path) -> Path:
    """The shipped stored-hay threshold rules, delays scaled down, with test phones."""
    shipped = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    rules = [dict(r, for_min=r["for_min"] * DELAY_SCALE) for r in shipped["rules"]
             if r["id"] in LEVELS]
    assert len(rules) == 3
    out = tmp_path / "alerts.yaml"
    out.write_text(yaml.safe_dump({
        "site": "ariege", "site_configs": [str(site_config)],
        "contacts": [{"id": c, "name": c, "phone": p} for c, p in PHONES.items()],
        "defaults": {"contacts": ["astreinte", "responsable"], "repeat_every_min": 0,
                     "escalate_after_min": 0},
        "rules": rules}, allow_unicode=True), encoding="utf-8")
    return out


def test_the_heating_bale_pages_at_each_level(
        tmp_path: Path, smsd: Any, mosquitto: MosquittoProcess,
        broker_for: Callable[[str], Broker]) -> None:
    site_config = _site_config(tmp_path)
    config = load_alert_config(_rules(tmp_path, site_config))
    delays = {r.id: getattr(r, "for_min", 0.0) * 60 for r in config.rules}
    store = AlertStore(tmp_path / "alerts.sqlite")
    engine = Engine(config=config, store=store,
                    notifier=FallbackNotifier(notifiers=[GammuNotifier(config=smsd.paths.config)]))
    service = AlertService(engine=engine, broker=broker_for("alerting"),
                           client_id=f"alerting-{tmp_path.name}")
    sims = run_in_thread(machines=("dryer",), speed=1.0, seed=5,
                         configs={"dryer": site_config})
    env = {**os.environ, **sims.env(), "DYNAMO_MQTT_HOST": mosquitto.host,
           "DYNAMO_MQTT_PORT": str(mosquitto.port),
           "DYNAMO_MQTT_PASSWORD_DRYER_GW": mosquitto.users["dryer-gw"],
           "DYNAMO_SPOOL_DIR": str(tmp_path / "spool"), "DYNAMO_RAM_DIR": str(tmp_path / "ram")}
    log = (tmp_path / "gateway.log").open("wb")
    gateway = subprocess.Popen([sys.executable, "-m", "dynamo", "gateway", "run", "--config",
                                str(site_config)], env=env, stdout=log, stderr=subprocess.STDOUT)
    service.start()
    try:
        wait_until(service.connected.is_set, timeout_s=30, what="the alerting service")
        wait_until(lambda: service.counters.messages >= 3, timeout_s=60,
                   what="the gateway's telemetry at the alerting service")
        assert smsd.sent() == {}, "sound bales: nothing must be sent"

        simulation = sims.simulations["dryer"]
        simulation.advance()
        model = simulation.model
        assert isinstance(model, DryerModel)
        heating = model.barn.start_heating(now_s=model.elapsed_s, duration_s=HEATING_S)
        base = model.barn.sound_c[HEATING_PROBE]
        crossed_ms = {}
        for rule, level in LEVELS.items():
            at_s = heating.crossing_s(level, base)
            assert at_s is not None
            crossed_ms[rule] = simulation.clock.wall_at(at_s) * 1000

        def whole(texts: dict[str, str]) -> list[str]:
            return [t for t in texts.values() if t.endswith("pour acquitter.")]

        # watch to the defaults (both at once here), danger to the first of its escalation
        # order, fire to all three at once.
        wait_until(lambda: len(whole(smsd.sent())) >= 6, timeout_s=HEATING_S + 60,
                   what="an SMS at each level, sent by gammu-smsd")
        time.sleep(1.0)
        firing = [n for n in store.notifications() if n.kind == "firing"]
        rules = {h.alert.id: h.alert for h in store.history()}
        got = sorted((rules[n.alert_id].rule_id, n.contact) for n in firing
                     if n.alert_id is not None)
        assert got == [("forage-danger", "astreinte"), ("forage-fire", "astreinte"),
                       ("forage-fire", "petr"), ("forage-fire", "responsable"),
                       ("forage-watch", "astreinte"), ("forage-watch", "responsable")]
        for n in firing:
            assert n.alert_id is not None
            alert = rules[n.alert_id]
            assert alert.subject == f"dryer.forage_t{HEATING_PROBE + 1}"
            # Not before the bale crossed the level and the rule's delay ran; not much after.
            earliest = crossed_ms[alert.rule_id] + delays[alert.rule_id] * 1000
            assert earliest - 500 <= n.at_ms <= earliest + LATE_S * 1000, (
                alert.rule_id, n.at_ms - crossed_ms[alert.rule_id])
            assert n.result == "sent" and n.notifier == "gammu"
        texts = whole(smsd.sent())
        place = "(travée 2, rang bas)"
        watch = [t for t in texts if "échauffement (surveiller)" in t]
        assert len(watch) == 2
        assert all(place in t and "Mesurez la température 2 fois par jour" in t for t in watch)
        [danger] = [t for t in texts if "DANGER d'incendie" in t]
        assert place in danger and "dépilez avec prudence" in danger
        assert "sans l'avis des pompiers (18)" in danger
        fire = [t for t in texts if "APPELEZ LE 18" in t]
        assert len(fire) == 3 and all("Ne déplacez pas les bottes" in t for t in fire)
        # The modem's own word: gammu-smsd moved each file to its sent folder.
        wait_until(lambda: all(n.outcome == "sent_by_modem"
                               for n in store.notifications() if n.kind == "firing"),
                   timeout_s=30, what="gammu-smsd to report every SMS sent")
    finally:
        service.stop()
        stop_processes([gateway])
        log.close()
        sims.stop()
        store.close()
