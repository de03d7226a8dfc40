"""Shift calendars: the rules a calendar must keep, refused with where and why, in French and
English, both from the site configuration (`dynamo config check`'s loader) and from the model
the api and the console validate with."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from telemetry.errors import ConfigError
from telemetry.loader import load_gateway_config
from telemetry.shifts import ExceptionKind, ShiftCalendar, translated

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "firmware-config" / "sites" / "ariege" / "packaging.yaml"
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def _refused(calendar: dict[str, Any]) -> list[tuple[str, tuple[Any, ...], str]]:
    """(code, where, French text) of every error of a refused calendar."""
    with pytest.raises(ValidationError) as caught:
        ShiftCalendar.model_validate(calendar)
    return [(e["type"], e["loc"], translated(e["type"], dict(e.get("ctx") or {}), "fr") or "")
            for e in caught.value.errors()]


def test_the_site_configuration_has_the_lines_calendar() -> None:
    config = load_gateway_config(PACKAGING)
    calendar = config.equipment_by_id("packaging").calendar
    assert calendar is not None
    assert [(s.start, s.end) for s in calendar.shifts] == [("06:00", "14:00"), ("14:00", "22:00")]
    closed = [e for e in calendar.exceptions if e.kind is ExceptionKind.CLOSED]
    assert date(2026, 5, 1) in {e.start for e in closed}
    assert all(e.whole_days for e in closed)


def test_bad_weekday_is_refused_in_french() -> None:
    [(code, where, fr)] = _refused(
        {"shifts": [{"days": ["mon", "lundi"], "start": "06:00", "end": "14:00"}]})
    assert code == "bad_weekday"
    assert where == ("shifts", 0, "days")
    assert fr.startswith("Jour inconnu « lundi »")


def test_end_before_start_is_refused_and_says_how_to_write_a_night_shift() -> None:
    [(code, where, fr)] = _refused(
        {"shifts": [{"days": WEEKDAYS, "start": "22:00", "end": "06:00"}]})
    assert code == "shift_end_before_start"
    assert where == ("shifts", 0)
    assert "La fin du poste (06:00) doit être après son début (22:00)" in fr
    assert "coupés à minuit" in fr
    # 24:00 is the end of the day: a night shift is two shifts split at midnight
    ShiftCalendar.model_validate({"shifts": [
        {"days": ["mon"], "start": "22:00", "end": "24:00"},
        {"days": ["tue"], "start": "00:00", "end": "06:00"}]})


def test_overlapping_shifts_are_refused_with_the_day_and_the_hours() -> None:
    [(code, _, fr)] = _refused({"shifts": [
        {"name": "matin", "days": WEEKDAYS, "start": "06:00", "end": "14:00"},
        {"name": "soir", "days": ["fri"], "start": "20:00", "end": "23:00"},
        {"name": "après-midi", "days": ["thu"], "start": "13:00", "end": "21:00"}]})
    assert code == "shifts_overlap"
    assert fr == "Les postes #1 (matin) et #3 (après-midi) se chevauchent le jeudi (13:00-14:00)"
    # touching shifts do not overlap
    ShiftCalendar.model_validate({"shifts": [
        {"days": WEEKDAYS, "start": "06:00", "end": "14:00"},
        {"days": WEEKDAYS, "start": "14:00", "end": "22:00"}]})


@pytest.mark.parametrize(("exception", "code"), [
    ({"kind": "closed", "start": "2026-05-08", "end": "2026-05-07"},
     "exception_end_before_start"),
    ({"kind": "planned_downtime", "start": "2026-05-06T12:00", "end": "2026-05-06T10:00"},
     "exception_end_before_start"),
    ({"kind": "extra", "start": "2026-05-09T08:00", "end": "2026-05-09T08:00"},
     "exception_empty"),
    ({"kind": "closed", "start": "2026-05-08", "end": "2026-05-08T12:00"}, "mixed_moments"),
    ({"kind": "closed", "start": "le 8 mai", "end": "2026-05-08"}, "bad_moment"),
    ({"kind": "holiday", "start": "2026-05-08", "end": "2026-05-08"}, "enum"),
])
def test_bad_exceptions_are_refused(exception: dict[str, str], code: str) -> None:
    errors = _refused({"shifts": [{"days": WEEKDAYS, "start": "06:00", "end": "14:00"}],
                       "exceptions": [exception]})
    assert [c for c, _, _ in errors] == [code]
    assert errors[0][1][:2] == ("exceptions", 0)
    if code != "enum":
        assert errors[0][2], "a French text for each of the calendar's own rules"


def test_times_of_day() -> None:
    [(code, where, fr)] = _refused({"shifts": [{"days": ["mon"], "start": "6h", "end": "14:00"}]})
    assert (code, where) == ("bad_clock", ("shifts", 0, "start"))
    assert fr == "Heure invalide « 6h » : attendu HH:MM, de 00:00 à 24:00"
    # YAML 1.1 reads an unquoted 14:00 as the integer 840 (base 60): taken back as 14:00
    calendar = ShiftCalendar.model_validate({"shifts": [{"days": ["mon"], "start": "06:00",
                                                         "end": 840}]})
    assert calendar.shifts[0].end == "14:00"


def test_a_calendar_needs_some_planned_time() -> None:
    [(code, _, _)] = _refused({"shifts": [], "exceptions": [
        {"kind": "closed", "start": "2026-05-08", "end": "2026-05-08"}]})
    assert code == "no_shift"
    only_extra = ShiftCalendar.model_validate({"exceptions": [
        {"kind": "extra", "start": "2026-05-09T08:00", "end": "2026-05-09T12:00"}]})
    assert only_extra.exceptions[0].start == datetime(2026, 5, 9, 8, 0)


def test_config_check_names_the_file_line_and_path(tmp_path: Path) -> None:
    text = PACKAGING.read_text().replace(
        "template_dirs: [../../templates]",
        f"template_dirs: [{REPO / 'firmware-config' / 'templates'}]").replace(
        'days: [mon, tue, wed, thu, fri], start: "14:00"', 'days: [mon, tue, wed, thu, fri], '
        'start: "13:00"')
    bad = tmp_path / "packaging.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_gateway_config(bad)
    report = str(caught.value)
    assert "equipment[0].calendar" in report
    assert "overlap on mon (13:00-14:00)" in report
    # the line of the calendar's mapping (its first key, just below `calendar:`)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "calendar:" in row) + 1
    assert f"packaging.yaml:{line}: equipment[0].calendar: shifts #1" in report
