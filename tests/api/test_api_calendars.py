"""The shift calendar routes: admins only, every version kept and audited, a stale version
refused, a wrong calendar refused with where and why in French; the availability follows the
calendar in force, and without one says why it has none."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.access.tokens import TokenRole
from api.records.tables import RecordAudit
from telemetry.influx.client import InfluxClient
from telemetry.influx.lineprotocol import line
from telemetry.influx.schema import STATE_HOURLY

REPO = Path(__file__).resolve().parents[2]
PARIS = ZoneInfo("Europe/Paris")
PATH = "/sites/ariege/equipment/packaging/calendar"
WEEK = {"period": "week", "date": "2026-05-06"}
MORNINGS = {"shifts": [{"name": "matin", "days": ["mon", "tue", "wed", "thu", "fri"],
                        "start": "06:00", "end": "14:00"}]}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'calendars.sqlite3'}"


def _put(client: TestClient, calendar: dict[str, Any] | None, version: int,
         reason: str = "") -> Any:
    return client.put(PATH, json={"calendar": calendar, "version": version, "reason": reason})


@pytest.mark.parametrize("role", [TokenRole.OPERATOR, TokenRole.EVALUATOR])
def test_only_admins_read_or_change_a_calendar(make_client: Callable[..., TestClient],
                                               role: TokenRole) -> None:
    client = make_client(role=role)
    assert client.get(PATH).status_code == 403
    assert _put(client, MORNINGS, 0).status_code == 403
    assert client.get(f"{PATH}/history").status_code == 403
    assert make_client(role=None).get(PATH).status_code == 401


def test_versions_audit_and_conflicts(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    start = client.get(PATH).json()
    assert (start["source"], start["version"]) == ("configuration", 0)
    assert start["calendar"] == start["configuration"]
    assert len(start["calendar"]["shifts"]) == 2

    changed = _put(client, MORNINGS, 0, "one shift from May")
    assert changed.status_code == 200, changed.text
    assert (changed.json()["source"], changed.json()["version"]) == ("api", 1)
    assert changed.json()["set_by"] == "token:test admin"
    assert [s["end"] for s in changed.json()["calendar"]["shifts"]] == ["14:00"]

    stale = _put(client, MORNINGS, 0)  # started from version 0, 1 is stored
    assert stale.status_code == 409
    assert "version 1 is stored" in stale.json()["detail"]
    assert client.put(PATH, json={"calendar": MORNINGS}).status_code == 428
    by_header = client.put(PATH, json={"calendar": None, "reason": "back to the site's"},
                           headers={"If-Match": '"1"'})
    assert by_header.status_code == 200, by_header.text
    back = by_header.json()
    assert (back["source"], back["version"]) == ("configuration", 2)

    history = client.get(f"{PATH}/history").json()
    assert [(h["version"], h["calendar"] is None, h["reason"]) for h in history] == [
        (1, False, "one shift from May"), (2, True, "back to the site's")]
    with client.app.state.sessions() as db:  # type: ignore[attr-defined]
        audit = list(db.scalars(select(RecordAudit).filter_by(kind="shift_calendars")
                                .order_by(RecordAudit.id)))
    assert [(a.action, a.actor, a.equipment) for a in audit] == [
        ("create", "token:test admin", "packaging"), ("edit", "token:test admin", "packaging")]
    assert audit[0].before is not None and audit[0].before["source"] == "configuration"
    assert audit[0].after is not None
    assert audit[0].after["calendar"] == {"shifts": MORNINGS["shifts"], "exceptions": []}
    assert audit[1].reason == "back to the site's"


def test_a_wrong_calendar_is_refused_in_french_and_nothing_is_stored(
        make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    wrong = {"shifts": [
        {"name": "matin", "days": ["mon", "tue"], "start": "06:00", "end": "14:00"},
        {"name": "nuit", "days": ["mon"], "start": "22:00", "end": "06:00"},
        {"name": "samedi", "days": ["sam"], "start": "08:00", "end": "12:00"}]}
    refused = _put(client, wrong, 0)
    assert refused.status_code == 422
    french = {tuple(e["loc"]): e["fr"] for e in refused.json()["detail"]}
    assert french[("body", "calendar", "shifts", 1)].startswith(
        "Poste 2 : La fin du poste (06:00) doit être après son début (22:00)")
    assert french[("body", "calendar", "shifts", 2, "days")] == (
        "Poste 3, jours : Jour inconnu « sam » : lun. à dim. s'écrivent mon, tue, wed, thu, "
        "fri, sat, sun")
    overlap = {"shifts": [
        {"name": "matin", "days": ["mon", "tue"], "start": "06:00", "end": "14:00"},
        {"name": "relais", "days": ["tue"], "start": "12:00", "end": "16:00"}]}
    [error] = _put(client, overlap, 0).json()["detail"]
    assert error["fr"] == ("Les postes #1 (matin) et #2 (relais) se chevauchent le mardi "
                           "(12:00-14:00)")
    assert error["en"] == "Shifts #1 (matin) and #2 (relais) overlap on tue (12:00-14:00)"
    assert client.get(PATH).json()["version"] == 0


def test_without_a_calendar_availability_is_null_and_says_why(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    # The line's configuration without its `calendar:` block.
    text = (REPO / "firmware-config" / "sites" / "ariege" / "packaging.yaml").read_text()
    head, rest = text.split("    calendar:\n", 1)
    body = rest[rest.index("\ndevices:"):]
    (tmp_path / "sites").mkdir()
    (tmp_path / "sites" / "packaging.yaml").write_text((head + body).replace(
        "template_dirs: [../../templates]",
        f"template_dirs: [{REPO / 'firmware-config' / 'templates'}]"))
    client = make_client(site_configs=tmp_path / "sites")
    assert client.get(PATH).json()["source"] == "none"
    packaging = client.get("/sites/ariege/equipment/packaging/indicators",
                           params=WEEK).json()["packaging"]
    assert packaging["oee_availability"] is None
    assert "no shift calendar" in packaging["oee_availability_reason"]
    assert packaging["planned_time"] is None
    assert packaging["oee"] is None
    # an admin's calendar then gives the planned time (no readings: still no availability)
    assert _put(client, MORNINGS, 0).status_code == 200
    packaging = client.get("/sites/ariege/equipment/packaging/indicators",
                           params=WEEK).json()["packaging"]
    assert packaging["planned_time"]["planned_busy_h"] == 40.0  # 5 mornings × 8 h
    assert packaging["oee_availability"] is None
    assert "no line_state reading" in packaging["oee_availability_reason"]


def test_over_31_days_the_hourly_rollups_are_split_by_the_calendar(
        make_client: Callable[..., TestClient], influx: InfluxClient) -> None:
    # 32 days from Monday 1 June 2026 00:00 to Friday 3 July 00:00 (Paris, UTC+2): read from
    # the hourly state rollups. The configuration's calendar: Mon-Fri 06:00-22:00, no holiday
    # in the period. Weekdays: 4 whole weeks (20) + Mon 29, Tue 30 June + Wed 1, Thu 2 July
    # = 24 days × 16 h = 384 h of planned busy time.
    # Rollups: running every hour, except 06:00-08:00 on each Monday (1, 8, 15, 22, 29 June),
    # stopped: 5 × 2 h = 10 h of unplanned stops. Run in PBT = 384 − 10 = 374 h; availability
    # = 374 / 384; running outside planned = 768 h − 384 h = 384 h.
    start = datetime(2026, 6, 1, tzinfo=PARIS)
    hours = 32 * 24
    lines = []
    for i in range(hours):
        at = start.astimezone(UTC) + timedelta(hours=i)
        local = at.astimezone(PARIS)
        state = "0" if local.weekday() == 0 and local.hour in (6, 7) else "1"
        lines.append(line(STATE_HOURLY, {"site": "ariege", "equipment": "packaging",
                                         "sensor": "packaging.line_state", "state": state},
                          {"seconds": 3600.0}, int(at.timestamp() * 1000)))
    influx.write(lines)
    client = make_client()
    period = {"start": "2026-06-01T00:00:00+02:00", "end": "2026-07-03T00:00:00+02:00"}
    body = client.get("/sites/ariege/equipment/packaging/indicators", params=period).json()
    packaging = body["packaging"]
    assert body["energy"]["evidence"] == "hourly rollups"
    assert packaging["planned_time"]["planned_busy_h"] == 384.0
    assert packaging["planned_time"]["run_h"] == 374.0
    assert packaging["planned_time"]["unplanned_stop_h"] == 10.0
    assert packaging["planned_time"]["running_outside_planned_h"] == 384.0
    assert packaging["oee_availability"] == pytest.approx(374 / 384)
    # a planned stop off the whole hour: the rollups cannot split that hour, so no figure
    half_hour = {"shifts": MORNINGS["shifts"], "exceptions": [
        {"kind": "planned_downtime", "start": "2026-06-03T10:30", "end": "2026-06-03T11:00"}]}
    assert _put(client, half_hour, 0).status_code == 200
    packaging = client.get("/sites/ariege/equipment/packaging/indicators",
                           params=period).json()["packaging"]
    assert packaging["oee_availability"] is None
    assert "whole hour" in packaging["oee_availability_reason"]
