"""The engine's state machine in simulated time: durations, hysteresis, repeats, escalation,
acknowledgement, silences, rate limit and restart, against a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest
from alertkit import Phone

from alerting.engine import AlertEvent, Engine
from alerting.notifier import FallbackNotifier
from alerting.rules import AlertConfig, load_alert_config
from alerting.store import AlertStore
from telemetry.payload import Reading, Status, Telemetry

T0 = 1_790_000_000.0  # a fixed instant (2026-09-21): the clock is ours


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, *, minutes: float) -> None:
        self.now += minutes * 60


ASTREINTE, RESPONSABLE, TECHNICIEN = "+33600000001", "+33600000002", "+33600000003"
RULES = """site: ariege
contacts:
  - {id: astreinte, name: Astreinte, phone: "+33600000001"}
  - {id: responsable, name: Responsable, phone: "+33600000002", language: en}
  - {id: technicien, name: Technicien, phone: "+33600000003"}
defaults: {contacts: [astreinte, responsable], repeat_every_min: 30, escalate_after_min: 15}
rate_limit: {max_sms: 6, per_min: 60}
rules:
  - {id: warm, name: Cellule trop chaude, kind: threshold, equipment: freezer,
     sensor: freezer.cabinet_air_temp, above: -15, clear: -17, for_min: 10, severity: critical}
  - {id: door, name: Porte ouverte, kind: state, equipment: freezer, sensor: freezer.door_open,
     for_min: 5, notify: {contacts: [astreinte], repeat_every_min: 0, escalate_after_min: 0}}
  - {id: fast, name: Réchauffement rapide, kind: rate, equipment: freezer,
     sensor: freezer.evaporator_temp, rise_per_min: 1, window_min: 4,
     notify: {contacts: [astreinte], repeat_every_min: 0, escalate_after_min: 0}}
  - {id: silent, name: Sonde muette, kind: no_data, equipment: freezer,
     sensor: freezer.product_core_temp, after_min: 10,
     notify: {contacts: [technicien], repeat_every_min: 0, escalate_after_min: 0}}
  - {id: offline, name: Passerelle hors ligne, kind: no_data, equipment: freezer,
     gateway: freezer-gw, after_min: 5,
     notify: {contacts: [technicien], repeat_every_min: 0, escalate_after_min: 0}}
"""


@pytest.fixture
def config(tmp_path: Path) -> AlertConfig:
    file = tmp_path / "alerts.yaml"
    file.write_text(RULES, encoding="utf-8")
    return load_alert_config(file)


class Rig:
    def __init__(self, config: AlertConfig, path: Path) -> None:
        self.clock = Clock()
        self.phone = Phone()
        self.events: list[AlertEvent] = []
        self.path = path
        self.config = config
        self.seq = 0
        self.engine = self.start()

    def start(self) -> Engine:
        self.store = AlertStore(self.path)
        return Engine(config=self.config, store=self.store,
                      notifier=FallbackNotifier(notifiers=[self.phone]), clock=self.clock,
                      on_event=self.events.append)

    def read(self, sensor: str, value: float, unit: str = "degC") -> None:
        self.seq += 1
        self.engine.on_telemetry(Telemetry(
            site="ariege", gateway="freezer-gw", equipment="freezer", device="ctl", seq=self.seq,
            ts=int(self.clock.now * 1000), readings=(Reading(sensor=sensor, value=value,
                                                             unit=unit),)))

    def texts(self, to: str = ASTREINTE) -> list[str]:
        return [text for number, text in self.phone.sent if number == to]


@pytest.fixture
def rig(config: AlertConfig, tmp_path: Path) -> Rig:
    return Rig(config, tmp_path / "alerts.sqlite")


def test_threshold_needs_its_duration_and_clears_with_hysteresis(rig: Rig) -> None:
    rig.read("freezer.cabinet_air_temp", -14.0)
    rig.clock.advance(minutes=9)
    rig.read("freezer.cabinet_air_temp", -13.5)
    assert rig.phone.sent == []  # 9 min above: still pending
    rig.clock.advance(minutes=1)
    rig.read("freezer.cabinet_air_temp", -12.5)
    [text] = rig.texts()
    assert text.startswith("[DYNAMO] ALERTE CRITIQUE n°1 – freezer : Cellule trop chaude.")
    assert "Valeur -12,5 °C le 21/09/2026 à 16:" in text  # Europe/Paris, CEST
    assert "Répondez OK 1 pour acquitter." in text
    rig.read("freezer.cabinet_air_temp", -16.0)  # below `above`, above `clear`: still firing
    assert len(rig.phone.sent) == 1
    rig.read("freezer.cabinet_air_temp", -17.5)
    assert rig.texts()[-1].startswith("[DYNAMO] Fin d'alerte n°1")
    assert [e.kind for e in rig.events] == ["fired", "resolved"]


def test_pending_that_goes_away_is_not_an_alert(rig: Rig) -> None:
    rig.read("freezer.cabinet_air_temp", -14.0)
    rig.clock.advance(minutes=5)
    rig.read("freezer.cabinet_air_temp", -16.0)  # back under `above` before 10 min
    rig.clock.advance(minutes=10)
    rig.read("freezer.cabinet_air_temp", -14.0)
    assert rig.phone.sent == [] and rig.store.history() != []
    assert all(h.alert.state == "pending" for h in rig.store.history())


def test_repeat_escalation_and_acknowledgement_by_reply(rig: Rig) -> None:
    rig.read("freezer.cabinet_air_temp", -10.0)
    rig.clock.advance(minutes=10)
    rig.read("freezer.cabinet_air_temp", -10.0)
    assert len(rig.texts()) == 1
    rig.clock.advance(minutes=15)
    rig.engine.tick()  # 15 min unacknowledged: the next contact, in English
    [escalated] = rig.texts(RESPONSABLE)
    assert escalated.startswith("[DYNAMO] CRITICAL ALERT #1 unacknowledged for 15 min")
    rig.clock.advance(minutes=15)
    rig.engine.tick()  # 30 min since the last SMS: a reminder to both
    assert rig.texts()[-1].startswith("[DYNAMO] Rappel n°1")
    assert rig.texts(RESPONSABLE)[-1].startswith("[DYNAMO] Reminder #1")
    assert rig.engine.on_sms(phone=RESPONSABLE, text="ok 1 je m'en occupe") is not None
    assert "acquittée par Responsable" in rig.texts()[-1]
    before = len(rig.phone.sent)
    rig.clock.advance(minutes=120)
    rig.engine.tick()
    assert len(rig.phone.sent) == before  # no more repeats once acknowledged
    [ack] = [a for a in rig.store.acks() if a.accepted]
    assert (ack.alert_id, ack.contact, ack.phone) == (1, "responsable", RESPONSABLE)
    kinds = [n.kind for n in rig.store.notifications(alert_id=1)]
    assert kinds == ["firing", "escalation", "repeat", "repeat", "ack", "ack"]


def test_reply_from_a_stranger_or_about_nothing_is_recorded_and_refused(rig: Rig) -> None:
    assert rig.engine.on_sms(phone="+33699999999", text="OK 1") is None
    assert rig.engine.on_sms(phone=ASTREINTE, text="OK 77") is None
    assert rig.engine.on_sms(phone=ASTREINTE, text="bonjour") is None
    reasons = [(a.accepted, a.reason) for a in rig.store.acks()]
    assert reasons == [(False, "unknown number"), (False, "no such open alert"),
                       (False, "not an acknowledgement")]


def test_state_held_too_long_and_rate_of_change(rig: Rig) -> None:
    rig.read("freezer.door_open", 1, unit="")
    rig.clock.advance(minutes=4)
    rig.read("freezer.door_open", 1, unit="")
    assert rig.phone.sent == []
    rig.clock.advance(minutes=1)
    rig.read("freezer.door_open", 1, unit="")
    assert "Porte ouverte" in rig.texts()[-1]
    for minute in range(5):  # +2 °C/min on the evaporator
        rig.read("freezer.evaporator_temp", -30.0 + 2 * minute)
        rig.clock.advance(minutes=1)
    assert "Réchauffement rapide" in rig.texts()[-1]


def test_no_data_from_a_sensor_and_gateway_offline(rig: Rig) -> None:
    rig.read("freezer.product_core_temp", -20.0)
    rig.engine.on_status(Status(site="ariege", gateway="freezer-gw", state="offline"))
    rig.clock.advance(minutes=5)
    rig.engine.tick()
    assert [t for t in rig.texts(TECHNICIEN) if "Passerelle hors ligne" in t]
    rig.clock.advance(minutes=5)
    rig.engine.tick()
    last = rig.texts(TECHNICIEN)[-1]
    assert "Sonde muette" in last and "Aucune donnée" in last
    rig.engine.on_status(Status(site="ariege", gateway="freezer-gw", state="online",
                                ts=int(rig.clock.now * 1000)))
    rig.read("freezer.product_core_temp", -20.0)
    resolved = [t for t in rig.texts(TECHNICIEN) if t.startswith("[DYNAMO] Fin d'alerte")]
    assert len(resolved) == 2


def test_maintenance_silence_holds_sms_until_its_end(rig: Rig) -> None:
    rig.engine.silence(equipment="freezer", until_ms=int((rig.clock.now + 3600) * 1000),
                       reason="dégivrage", by="astreinte")
    rig.read("freezer.door_open", 1, unit="")
    rig.clock.advance(minutes=6)
    rig.read("freezer.door_open", 1, unit="")
    rig.engine.tick()
    assert rig.phone.sent == [] and rig.events[-1].kind == "fired"
    rig.clock.advance(minutes=60)
    rig.engine.tick()  # silence over, door still open: now they are told
    assert "Porte ouverte" in rig.texts()[-1]


def test_rate_limit_per_number_then_a_summary(rig: Rig) -> None:
    for i in range(10):  # ten door openings long enough to fire, each one resolved
        rig.read("freezer.door_open", 1, unit="")
        rig.clock.advance(minutes=5)
        rig.read("freezer.door_open", 1, unit="")
        rig.read("freezer.door_open", 0, unit="")
        rig.clock.advance(minutes=0.1 + 0 * i)
    assert len(rig.texts()) == 6  # max_sms per 60 min
    suppressed = [n for n in rig.store.notifications(phone=ASTREINTE)
                  if n.result == "rate_limited"]
    assert len(suppressed) == 14
    rig.clock.advance(minutes=60)
    rig.engine.tick()
    assert rig.texts()[-1].startswith("[DYNAMO] 14 SMS non envoyés à ce numéro (limite : 6")
    rig.engine.tick()
    assert rig.texts()[-1].startswith("[DYNAMO] 14 SMS")  # the summary is sent once
    assert len([t for t in rig.texts() if "non envoyés" in t]) == 1


def test_restart_neither_forgets_nor_repeats(rig: Rig) -> None:
    rig.read("freezer.cabinet_air_temp", -10.0)
    rig.clock.advance(minutes=10)
    rig.read("freezer.cabinet_air_temp", -10.0)
    assert len(rig.phone.sent) == 1
    rig.store.close()
    rig.engine = rig.start()  # a new process on the same database
    rig.read("freezer.cabinet_air_temp", -10.0)
    rig.engine.tick()
    assert len(rig.phone.sent) == 1  # not announced twice
    rig.clock.advance(minutes=15)
    rig.engine.tick()  # but still escalated on schedule
    assert len(rig.texts(RESPONSABLE)) == 1
    rig.read("freezer.cabinet_air_temp", -18.0)
    assert rig.texts()[-1].startswith("[DYNAMO] Fin d'alerte n°1")


def test_failed_delivery_is_recorded_with_its_reason(rig: Rig) -> None:
    rig.phone.down = True
    rig.read("freezer.product_core_temp", -20.0)
    rig.read("freezer.door_open", 1, unit="")
    rig.clock.advance(minutes=5)
    rig.read("freezer.door_open", 1, unit="")
    [record] = rig.store.notifications(phone=ASTREINTE)
    assert (record.result, record.detail) == ("failed", "phone: modem unplugged")


def test_replayed_backlog_does_not_page(rig: Rig) -> None:
    rig.clock.advance(minutes=60)  # readings arrive an hour late (gateway catching up)
    for minute in range(0, 12, 2):
        rig.seq += 1
        rig.engine.on_telemetry(Telemetry(
            site="ariege", gateway="freezer-gw", equipment="freezer", device="ctl",
            seq=rig.seq, ts=int((T0 + minute * 60) * 1000),
            readings=(Reading(sensor="freezer.cabinet_air_temp", value=-10.0, unit="degC"),)))
    assert rig.phone.sent == []
    [history] = rig.store.history()
    assert history.alert.state == "firing" and history.alert.extra == {"replayed": "1"}


def test_alert_sent_at_the_edge_is_adopted_not_sent_again(rig: Rig) -> None:
    # The gateway alerted through its own modem 3 minutes ago, uplink down; now it is back.
    rig.engine.on_edge_event(gateway="freezer-gw", rule_id="warm",
                             subject="freezer.cabinet_air_temp", event="fired",
                             at_ms=int((rig.clock.now - 180) * 1000))
    rig.read("freezer.cabinet_air_temp", -11.0)
    rig.engine.tick()
    assert rig.texts() == []  # already announced at the edge
    rig.clock.advance(minutes=12)
    rig.engine.tick()  # 15 min after the edge's SMS: escalation continues from there
    assert rig.texts(RESPONSABLE)[-1].startswith("[DYNAMO] CRITICAL ALERT #1 unacknowledged")
    rig.read("freezer.cabinet_air_temp", -18.0)
    assert rig.texts()[-1].startswith("[DYNAMO] Fin d'alerte n°1")
    [history] = [h for h in rig.store.history() if h.alert.rule_id == "warm"]
    assert history.alert.extra == {"edge": "freezer-gw"}


def test_edge_resolution_closes_without_sms(rig: Rig) -> None:
    for event in ("fired", "acknowledged", "resolved"):
        rig.engine.on_edge_event(gateway="freezer-gw", rule_id="door", subject="freezer.door_open",
                                 event=event, at_ms=int(rig.clock.now * 1000), by="astreinte")
    [history] = rig.store.history()
    assert (history.alert.state, history.alert.acked_by) == ("resolved", "astreinte")
    assert rig.phone.sent == []
