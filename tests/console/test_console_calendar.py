"""The shift calendar page in the real browser: an admin sees the configuration's calendar,
changes the afternoon shift and adds a planned stop (a new version, listed in the history,
stored for the api's availability), a shift ending before it starts is refused in French with
the row marked and the values kept, going back to the configuration's calendar is one more
version; an operator gets 403 and no link; 360 px without horizontal scroll."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from api.access.tokens import TokenRole
from api.records import calendars

PASSWORD = "calendar-password-1"
PAGE = "/indicateurs/ariege/packaging/calendrier"


@pytest.fixture
def admin(page: Any, make_person: Callable[..., Any],
          login: Callable[[Any, str, str], None]) -> Iterator[Any]:
    make_person("admin-postes", PASSWORD, role=TokenRole.ADMIN)
    login(page, "admin-postes", PASSWORD)
    yield page


def _stored(console_server: Any) -> calendars.Effective:
    eq = console_server.app.state.registry.get("ariege", "packaging")
    with console_server.db() as db:
        return calendars.effective(db, eq)


def test_an_admin_edits_the_calendar(admin: Any, console_server: Any) -> None:
    page = admin
    page.goto("/indicateurs/ariege/packaging")
    assert page.locator("[data-link=calendar]").count() == 1
    response = page.goto(PAGE)
    assert response is not None and response.status == 200
    source = page.locator("#calendar-source")
    assert source.get_attribute("data-source") == "configuration"
    assert page.input_value("#shift-1-end") == "22:00"
    holidays = page.locator("fieldset[data-exception]").count() - 3  # 3 empty rows to add to

    # a shift ending before it starts: refused in French, the row marked, the values kept
    page.fill("#shift-0-end", "05:00")
    with page.expect_navigation():
        page.click("#save-calendar")
    errors = page.locator("#calendar-errors").inner_text()
    assert "Poste 1 : La fin du poste (05:00) doit être après son début (06:00)" in errors
    assert "has-error" in (page.locator("fieldset[data-shift='0']").get_attribute("class") or "")
    assert page.input_value("#shift-0-end") == "05:00"
    assert _stored(console_server).version == 0

    # fixed, the afternoon shortened and a planned stop added in the first empty row
    page.fill("#shift-0-end", "14:00")
    page.fill("#shift-1-end", "20:00")
    row = holidays
    page.select_option(f"#exception-{row}-kind", "planned_downtime")
    page.fill(f"#exception-{row}-start", "2026-05-06T10:00")
    page.fill(f"#exception-{row}-end", "2026-05-06T12:00")
    page.fill(f"#exception-{row}-reason", "maintenance préventive")
    page.fill("#f-reason", "poste d'après-midi raccourci")
    with page.expect_navigation():
        page.click("#save-calendar")
    assert "Calendrier enregistré (version 1)" in page.locator("#calendar-done").inner_text()
    assert source.get_attribute("data-source") == "api"
    assert "poste d'après-midi raccourci" in page.locator("#calendar-history").inner_text()
    found = _stored(console_server)
    assert (found.source, found.version) == ("api", 1)
    assert found.calendar is not None
    assert [s.end for s in found.calendar.shifts] == ["14:00", "20:00"]
    assert found.calendar.exceptions[-1].kind.value == "planned_downtime"
    assert found.row is not None and found.row.set_by == "user:admin-postes"

    # back to the configuration's calendar: one more version
    with page.expect_navigation():
        page.click("#revert-calendar")
    assert source.get_attribute("data-source") == "configuration"
    assert page.locator("#calendar-history li").count() == 2
    assert _stored(console_server).version == 2
    assert page.input_value("#shift-1-end") == "22:00"

    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(PAGE)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def test_an_operator_may_not_see_the_calendar(page: Any, make_person: Callable[..., Any],
                                              login: Callable[[Any, str, str], None]) -> None:
    make_person("operateur-postes", PASSWORD, role=TokenRole.OPERATOR, site="ariege")
    login(page, "operateur-postes", PASSWORD)
    page.goto("/indicateurs/ariege/packaging")
    assert page.locator("[data-link=calendar]").count() == 0
    response = page.goto(PAGE)
    assert response is not None and response.status == 403
