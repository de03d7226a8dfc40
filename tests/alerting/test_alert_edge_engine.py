"""The engine's two edge behaviours in simulated time, against a real SQLite store: the edge
engine pages only while its uplink is down; the central engine's handover window after an edge
gateway's outage holds its alerts until the edge reports them (or the window ends)."""

from __future__ import annotations

from pathlib import Path

from alertkit import Phone

from alerting.engine import Engine
from alerting.notifier import FallbackNotifier
from alerting.rules import load_alert_config
from alerting.store import AlertStore
from telemetry.payload import Reading, Status, Telemetry

T0 = 1_790_000_000.0
RULES = """site: ariege
contacts: [{id: astreinte, name: Astreinte, phone: "+33600000001"}]
defaults: {contacts: [astreinte], repeat_every_min: 10, escalate_after_min: 0}
edge_gateways: [freezer-gw]
edge_handover_s: 30
rules:
  - {id: door, name: Porte ouverte, kind: state, equipment: freezer, sensor: freezer.door_open}
"""


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _engine(tmp_path: Path, clock: Clock, **kwargs: object) -> tuple[Engine, Phone]:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES, encoding="utf-8")
    phone = Phone()
    engine = Engine(config=load_alert_config(rules), store=AlertStore(tmp_path / "a.sqlite"),
                    notifier=FallbackNotifier(notifiers=[phone]), clock=clock,
                    **kwargs)  # type: ignore[arg-type]  # only `pages` is passed
    return engine, phone


def _door(clock: Clock, value: float, seq: int) -> Telemetry:
    return Telemetry(site="ariege", gateway="freezer-gw", equipment="freezer", device="ctl",
                     seq=seq, ts=int(clock.now * 1000),
                     readings=(Reading(sensor="freezer.door_open", value=value, unit=""),))


def _back(clock: Clock, lost_s: float) -> Status:
    return Status(site="ariege", gateway="freezer-gw", state="online", ts=int(clock.now * 1000),
                  buffer_depth=40, uplink_lost_ts=int((T0 + lost_s) * 1000))


def test_edge_engine_pages_only_while_the_uplink_is_down(tmp_path: Path) -> None:
    clock, uplink = Clock(), ["up"]
    engine, phone = _engine(tmp_path, clock, pages=lambda: uplink[0] == "down")
    engine.on_telemetry(_door(clock, 1, 1))  # fires with the uplink up: the central's
    [alert] = engine.store.open_alerts()
    assert alert.extra == {"central": "1"} and phone.sent == []
    uplink[0] = "down"
    clock.now += 15 * 60
    engine.tick()  # no repeat of the central's alert from the Pi
    engine.on_telemetry(_door(clock, 0, 2))  # nor its resolution
    assert phone.sent == []
    engine.on_telemetry(_door(clock, 1, 3))  # down: the edge's own
    assert len(phone.sent) == 1 and "Porte ouverte" in phone.sent[0][1]
    uplink[0] = "up"
    clock.now += 60
    engine.on_telemetry(_door(clock, 0, 4))  # resolved after the handover: central's to say
    assert len(phone.sent) == 1


def test_central_holds_an_edge_gateways_alerts_after_its_outage(tmp_path: Path) -> None:
    clock = Clock()
    engine, phone = _engine(tmp_path, clock)
    engine.on_status(_back(clock, lost_s=-120))
    engine.on_telemetry(_door(clock, 1, 1))
    [held] = engine.store.open_alerts()
    assert held.state == "firing" and held.extra == {"held": "freezer-gw"}
    engine.tick()
    assert phone.sent == []
    # The edge's report arrives within the window: adopted, never announced from here.
    engine.on_edge_event(gateway="freezer-gw", rule_id="door", subject="freezer.door_open",
                         event="fired", at_ms=int((T0 - 60) * 1000))
    clock.now += 31
    engine.tick()
    assert phone.sent == []
    # Repeats continue from the edge's SMS (at T0 - 60 s): 10 min after it, one reminder.
    clock.now += 9 * 60
    engine.tick()
    assert len(phone.sent) == 1
    engine.on_telemetry(_door(clock, 0, 2))
    assert len(phone.sent) == 2  # the one resolution


def test_an_unreported_alert_is_announced_when_the_window_ends(tmp_path: Path) -> None:
    clock = Clock()
    engine, phone = _engine(tmp_path, clock)
    engine.on_status(_back(clock, lost_s=-120))
    engine.on_telemetry(_door(clock, 1, 1))
    clock.now += 29
    engine.tick()
    assert phone.sent == []
    clock.now += 2
    engine.tick()
    assert len(phone.sent) == 1  # late by the window at most, never lost
    # The same outage's statuses (periodic, health) open no new window.
    engine.on_status(_back(clock, lost_s=-120))
    engine.on_telemetry(_door(clock, 0, 2))
    engine.on_telemetry(_door(clock, 1, 3))
    assert len(phone.sent) == 3
