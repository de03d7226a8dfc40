"""Alert history through the api: a real history is produced by the real alerting engine
(its SQLite store, simulated time, an in-test phone standing in for the SMS network), then
read back over HTTP from the same file, read-only."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alertkit import Phone
from fastapi.testclient import TestClient

from alerting.engine import Engine
from alerting.notifier import FallbackNotifier
from alerting.rules import load_alert_config
from alerting.store import AlertStore
from api.access.tokens import TokenRole
from telemetry.payload import Reading, Telemetry

T0 = 1_790_000_000.0  # 2026-09-21T14:13:20Z: the clock is ours
ASTREINTE, RESPONSABLE = "+33600000001", "+33600000002"
RULES = """site: ariege
contacts:
  - {id: astreinte, name: Astreinte, phone: "+33600000001"}
  - {id: responsable, name: Responsable, phone: "+33600000002"}
defaults: {contacts: [astreinte, responsable], repeat_every_min: 30, escalate_after_min: 15}
rules:
  - {id: warm, name: Cellule trop chaude, kind: threshold, equipment: freezer,
     sensor: freezer.cabinet_air_temp, above: -15, clear: -17, for_min: 10, severity: critical}
  - {id: door, name: Porte ouverte, kind: state, equipment: freezer, sensor: freezer.door_open,
     for_min: 5, notify: {contacts: [astreinte], repeat_every_min: 0, escalate_after_min: 0}}
  - {id: hot, name: Surchauffe, kind: threshold, equipment: dryer, sensor: dryer.outlet_air_temp,
     above: 60, clear: 55, for_min: 0,
     notify: {contacts: [astreinte], repeat_every_min: 0, escalate_after_min: 0}}
"""


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'alerts-api.sqlite3'}"


@pytest.fixture
def alert_db(tmp_path: Path) -> Path:
    """An alert store holding a history made by the real engine:
    1. freezer `warm`: fires, escalates to the manager, who acknowledges by SMS; resolves;
    2. freezer `door`: fires while the modem is down (delivery failed), still firing;
    3. dryer `hot`: fires and resolves."""
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES, encoding="utf-8")
    path = tmp_path / "alerts.sqlite"
    store = AlertStore(path)
    now = [T0]
    phone = Phone()
    engine = Engine(config=load_alert_config(rules), store=store,
                    notifier=FallbackNotifier(notifiers=[phone]), clock=lambda: now[0])
    seq = [0]

    def read(equipment: str, sensor: str, value: float, unit: str) -> None:
        seq[0] += 1
        engine.on_telemetry(Telemetry(
            site="ariege", gateway=f"{equipment}-gw", equipment=equipment, device="ctl",
            seq=seq[0], ts=int(now[0] * 1000),
            readings=(Reading(sensor=sensor, value=value, unit=unit),)))

    def advance(minutes: float) -> None:
        now[0] += minutes * 60

    read("freezer", "freezer.cabinet_air_temp", -10.0, "degC")
    advance(10)
    read("freezer", "freezer.cabinet_air_temp", -10.0, "degC")  # fires: SMS to astreinte
    advance(15)
    engine.tick()  # unacknowledged for 15 min: escalation to responsable
    advance(1)
    assert engine.on_sms(phone=RESPONSABLE, text="OK 1 j'arrive") is not None
    advance(20)
    read("freezer", "freezer.cabinet_air_temp", -18.0, "degC")  # resolves
    advance(5)
    phone.down = True
    read("freezer", "freezer.door_open", 1, "")
    advance(6)
    read("freezer", "freezer.door_open", 1, "")  # fires; the SMS cannot be delivered
    phone.down = False
    advance(60)
    read("dryer", "dryer.outlet_air_temp", 70.0, "degC")
    advance(1)
    read("dryer", "dryer.outlet_air_temp", 50.0, "degC")
    store.close()
    return path


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def test_history_shows_notifications_delivery_results_and_who_acknowledged(
        alert_db: Path, make_client: Callable[..., TestClient]) -> None:
    client = make_client(role=TokenRole.OPERATOR, site="ariege", api_alert_db=alert_db)
    response = client.get("/sites/ariege/alerts")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(a["id"], a["rule_id"], a["equipment"], a["state"]) for a in body] == [
        (3, "hot", "dryer", "resolved"), (2, "door", "freezer", "firing"),
        (1, "warm", "freezer", "resolved")]
    warm = body[2]
    assert warm["acknowledged_by"] is not None and "esponsable" in warm["acknowledged_by"]
    assert _ms(warm["fired_at"]) == int((T0 + 600) * 1000)
    assert _ms(warm["acknowledged_at"]) == int((T0 + 26 * 60) * 1000)
    assert _ms(warm["resolved_at"]) == int((T0 + 46 * 60) * 1000)
    assert [(n["kind"], n["contact"], n["result"]) for n in warm["notifications"]][:2] == [
        ("firing", "astreinte", "sent"), ("escalation", "responsable", "sent")]
    assert warm["notifications"][0]["reference"] == "ref-1"
    assert "resolved" in [n["kind"] for n in warm["notifications"]]
    [ack] = warm["acks"]
    assert (ack["phone"], ack["contact"], ack["accepted"], ack["text"]) == (
        RESPONSABLE, "responsable", True, "OK 1 j'arrive")
    door = body[1]
    assert [(n["kind"], n["result"]) for n in door["notifications"]] == [("firing", "failed")]
    assert "modem unplugged" in door["notifications"][0]["detail"]
    # The api's reading agrees with the alerting store's own history(), field for field.
    store = AlertStore(alert_db)
    try:
        own = store.history(site="ariege")
    finally:
        store.close()
    for mine, theirs in zip(body, own, strict=True):
        alert = dataclasses.asdict(theirs.alert)
        assert (mine["id"], mine["acknowledged_by"], mine["escalation_level"], mine["value"]) == (
            alert["id"], alert["acked_by"], alert["level"], alert["value"])
        assert [(n["id"], n["kind"], n["result"], n["outcome"], n["text"])
                for n in mine["notifications"]] == [
            (n.id, n.kind, n.result, n.outcome, n.text) for n in theirs.notifications]
        assert [(a["id"], a["accepted"], a["reason"]) for a in mine["acks"]] == [
            (a.id, a.accepted, a.reason) for a in theirs.acks]


def test_filters_and_limits(alert_db: Path, make_client: Callable[..., TestClient]) -> None:
    client = make_client(role=TokenRole.EVALUATOR, api_alert_db=alert_db)
    freezer = client.get("/sites/ariege/alerts", params={"equipment": "freezer"}).json()
    assert [a["id"] for a in freezer] == [2, 1]
    assert [a["id"] for a in client.get("/sites/ariege/alerts",
                                        params={"limit": 1}).json()] == [3]
    # Alert 1 last changed at T0 + 46 min, alert 2 fired at T0 + 57 min.
    since = datetime.fromtimestamp(T0, UTC) + timedelta(minutes=50)
    recent = client.get("/sites/ariege/alerts", params={"since": since.isoformat()}).json()
    assert [a["id"] for a in recent] == [3, 2]


@pytest.mark.parametrize("params", [
    {"equipment": "freezer' OR 1=1 --"}, {"equipment": "Freezer"}, {"limit": 0},
    {"limit": 1001}, {"since": "2026-09-21T14:00:00"}, {"since": "yesterday"}])
def test_bad_parameters_are_refused(alert_db: Path, make_client: Callable[..., TestClient],
                                    params: dict[str, object]) -> None:
    client = make_client(api_alert_db=alert_db)
    assert client.get("/sites/ariege/alerts", params=params).status_code == 422


def test_scope_and_availability(alert_db: Path, tmp_path: Path,
                                make_client: Callable[..., TestClient]) -> None:
    other = make_client(role=TokenRole.OPERATOR, site="elsewhere", api_alert_db=alert_db)
    assert other.get("/sites/ariege/alerts").status_code == 404
    anonymous = make_client(role=None, api_alert_db=alert_db)
    assert anonymous.get("/sites/ariege/alerts").status_code == 401
    client = make_client(api_alert_db=alert_db)
    assert client.get("/sites/nowhere/alerts").status_code == 404
    assert client.get("/sites/ariege/alerts", params={"equipment": "boiler"}).status_code == 404
    unset = make_client()
    assert unset.get("/sites/ariege/alerts").status_code == 503
    missing = make_client(api_alert_db=tmp_path / "absent.sqlite")
    assert missing.get("/sites/ariege/alerts").status_code == 503
    assert not (tmp_path / "absent.sqlite").exists()  # read-only: never created
