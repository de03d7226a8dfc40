"""The production records pages in the real browser: a dryer batch typed with a wrong moisture
(French error next to the field, nothing saved), fixed and saved, and the dryer's
`kwh_per_t_water` going from null to the value computed by hand; edit and its audit entry; a
double click stores one record; a racing edit is refused; void with a reason; keyboard-only
entry; 360 px without horizontal scroll; CSRF; another site's records are 404."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from api.access.tokens import TokenRole, create_token
from api.records.tables import Batch
from telemetry.influx.client import InfluxClient
from telemetry.influx.lineprotocol import line

PASSWORD = "barn-password-1"
FORM = "/registres/ariege/dryer/batches/nouveau"
LIST = "/registres/ariege/dryer/batches"
# 20 November 2026, Paris is UTC+1: 08:00 local is 07:00 UTC, 18:00 local is 17:00 UTC.
START_UTC = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
END_UTC = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)


def _live_batches(console_server: Any) -> list[Batch]:
    with console_server.db() as db:
        return list(db.scalars(select(Batch).where(Batch.voided_at.is_(None))
                               .order_by(Batch.id)))


def _count(console_server: Any) -> int:
    with console_server.db() as db:
        return int(db.scalar(select(func.count()).select_from(Batch)) or 0)


@pytest.fixture(scope="module")
def stored_batch(console_server: Any) -> int:
    """A batch stored straight in the database, for the tests that only look at one."""
    with console_server.db() as db:
        row = Batch(site="ariege", equipment="dryer", product="luzerne témoin",
                    started_at=START_UTC - timedelta(days=3),
                    ended_at=END_UTC - timedelta(days=3), created_by="test")
        db.add(row)
        db.commit()
        return row.id


@pytest.fixture(scope="module")
def api_token(console_server: Any) -> str:
    with console_server.db() as db:
        return create_token(db, role=TokenRole.ADMIN, site=None, name="console test")


@pytest.fixture(scope="module")
def energy(console_server: Any) -> None:
    """The dryer's electricity counter rising 10 kWh per hour over the batch's 10 hours, one
    reading a minute: 100 kWh used."""
    settings = console_server.settings
    eq = console_server.app.state.registry.get("ariege", "dryer")
    sensor = next(s for s in eq.sensors if s.id == "dryer.electric")
    tags = {"site": "ariege", "gateway": eq.gateway, "equipment": "dryer",
            "device": sensor.device, "sensor": sensor.id, "unit": sensor.unit,
            "quality": "good"}
    lines = []
    for minute in range(0, 10 * 60 + 1):
        at = START_UTC + timedelta(minutes=minute)
        lines.append(line("readings", tags, {"value": 1000.0 + minute / 6},
                          int(at.timestamp() * 1000)))
    client = InfluxClient(url=settings.influx_url, database=settings.influx_db)
    try:
        client.write(lines)
    finally:
        client.close()


@pytest.fixture(scope="module")
def operator_context(browser: Any, console_server: Any) -> Iterator[Any]:
    """One browser context signed in as an operator of Ariège for the whole module (signing
    in hashes a password: once is enough)."""
    from api.access import people

    with console_server.db() as db:
        if people.find(db, login="meunier") is None:
            people.create_person(db, login="meunier", name="Meunier", role=TokenRole.OPERATOR,
                                 site="ariege", password=PASSWORD)
    context = browser.new_context(viewport={"width": 1280, "height": 800},
                                  base_url=console_server.base_url)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.goto("/connexion")
    tab.fill("#login", "meunier")
    tab.fill("#password", PASSWORD)
    with tab.expect_navigation():
        tab.click("form.login-form button[type=submit]")
    tab.close()
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def operator(operator_context: Any) -> Iterator[Any]:
    tab = operator_context.new_page()
    try:
        yield tab
    finally:
        tab.close()


def _kwh_per_t_water(console_server: Any, token: str) -> float | None:
    response = httpx.get(
        f"{console_server.base_url}/api/v1/sites/ariege/equipment/dryer/indicators",
        params={"start": START_UTC.isoformat(), "end": END_UTC.isoformat()},
        headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200, response.text
    value: float | None = response.json()["dryer"]["kwh_per_t_water"]
    return value


def _fill_batch(page: Any, *, product: str, moisture_out: str) -> None:
    page.fill("#f-product", product)
    page.fill("#f-started_at", "2026-11-20T08:00")
    page.fill("#f-ended_at", "2026-11-20T18:00")
    page.fill("#f-mass_in_kg", "10000")
    page.fill("#f-moisture_in_pct", "60")
    page.fill("#f-moisture_out_pct", moisture_out)


def test_wrong_moisture_then_fixed_and_the_indicator(
        operator: Any, console_server: Any, api_token: str, energy: None) -> None:
    page = operator
    assert _kwh_per_t_water(console_server, api_token) is None
    before = _count(console_server)
    page.goto(FORM)
    _fill_batch(page, product="luzerne coupe 1", moisture_out="70")
    with page.expect_navigation():
        page.click("form.record-form button[type=submit]")
    error = page.locator("#err-moisture_out_pct")
    assert "inférieure ou égale à l'humidité d'entrée" in error.inner_text()
    field = page.locator("#f-moisture_out_pct")
    assert field.get_attribute("aria-invalid") == "true"
    assert "err-moisture_out_pct" in (field.get_attribute("aria-describedby") or "")
    # Nothing saved, every typed value kept.
    assert _count(console_server) == before
    assert page.input_value("#f-mass_in_kg") == "10000"
    assert page.input_value("#f-started_at") == "2026-11-20T08:00"
    assert page.input_value("#f-moisture_out_pct") == "70"

    page.fill("#f-moisture_out_pct", "15")
    with page.expect_navigation():
        page.click("form.record-form button[type=submit]")
    assert "/registres/ariege/dryer/batches" in page.url
    rows = [b for b in _live_batches(console_server) if b.product == "luzerne coupe 1"]
    assert len(rows) == 1
    assert rows[0].started_at == START_UTC and rows[0].ended_at == END_UTC
    assert rows[0].created_by == "user:meunier"
    # By hand: water = 10 000 kg × (1 − 0.40 / 0.85) = 4 500 / 0.85 kg = 5.294 t;
    # 100 kWh / (4.5 / 0.85 t) = 85 / 4.5 = 18.888… kWh per tonne of water.
    assert _kwh_per_t_water(console_server, api_token) == pytest.approx(85 / 4.5, rel=1e-6)


def test_edit_then_history(operator: Any, console_server: Any) -> None:
    page = operator
    batch = next(b for b in _live_batches(console_server) if b.product == "luzerne coupe 1")
    page.goto(f"{LIST}/{batch.id}/modifier")
    assert page.input_value("input[name=version]") == str(batch.version)
    page.fill("#f-mass_in_kg", "9000")
    page.fill("#f-reason", "pesée corrigée")
    with page.expect_navigation():
        page.click("form.record-form button[type=submit]")
    page.goto(f"{LIST}/{batch.id}/historique")
    edit = page.locator('li[data-action="edit"]')
    assert edit.count() == 1
    assert edit.locator("[data-who]").inner_text() == "meunier"
    assert edit.locator("[data-via]").inner_text() == "console"
    assert "pesée corrigée" in edit.inner_text()
    row = edit.locator("tr", has_text="Masse")
    assert row.locator("[data-before]").inner_text() == "10\u202f000"
    assert row.locator("[data-after]").inner_text() == "9\u202f000"


def test_double_click_saves_one_record(operator: Any, console_server: Any) -> None:
    page = operator
    page.goto(FORM)
    _fill_batch(page, product="luzerne double clic", moisture_out="14")
    with page.expect_navigation():
        page.dblclick("form.record-form button[type=submit]")
    assert len([b for b in _live_batches(console_server)
                if b.product == "luzerne double clic"]) == 1
    # The same form posted twice (what a second click sends when the script is slow): the
    # idempotency key keeps it to one record.
    page.goto(FORM)
    _fill_batch(page, product="luzerne renvoi", moisture_out="14")
    form = {name: page.input_value(f"[name={name}]") for name in (
        "csrf_token", "idempotency_key", "product", "started_at", "ended_at", "mass_in_kg",
        "moisture_in_pct", "moisture_out_pct")}
    for _ in range(2):
        response = page.request.post(FORM, form=form, max_redirects=0)
        assert response.status == 303
    assert len([b for b in _live_batches(console_server)
                if b.product == "luzerne renvoi"]) == 1


def test_racing_edit_is_refused(operator: Any, console_server: Any) -> None:
    first = operator
    batch = next(b for b in _live_batches(console_server) if b.product == "luzerne renvoi")
    second = first.context.new_page()
    first.goto(f"{LIST}/{batch.id}/modifier")
    second.goto(f"{LIST}/{batch.id}/modifier")
    first.fill("#f-mass_in_kg", "8000")
    with first.expect_navigation():
        first.click("form.record-form button[type=submit]")
    second.fill("#f-mass_in_kg", "7000")
    with second.expect_navigation():
        second.click("form.record-form button[type=submit]")
    notice = second.locator("#conflict").inner_text()
    assert "Ce lot a été modifié entre-temps par meunier" in notice
    assert "rechargez" in notice
    stored = next(b for b in _live_batches(console_server) if b.id == batch.id)
    assert stored.mass_in_kg == 8000.0
    assert stored.version == batch.version + 1


def test_void_with_reason(operator: Any, console_server: Any) -> None:
    page = operator
    batch = next(b for b in _live_batches(console_server) if b.product == "luzerne renvoi")
    page.goto(f"{LIST}/{batch.id}/annuler")
    with page.expect_navigation():
        page.click("form.void-form button[type=submit]")
    assert "motif" in page.locator("#err-reason").inner_text()
    assert batch.id in [b.id for b in _live_batches(console_server)]
    page.fill("#f-reason", "saisi en double")
    with page.expect_navigation():
        page.click("form.void-form button[type=submit]")
    assert batch.id not in [b.id for b in _live_batches(console_server)]
    assert page.locator(f"#r{batch.id}").count() == 0
    page.goto(f"{LIST}?annulees=1")
    voided = page.locator(f"#r{batch.id}")
    assert "voided" in (voided.get_attribute("class") or "")
    assert "saisi en double" in voided.inner_text()
    decoration = voided.locator(".fields").evaluate(
        "e => getComputedStyle(e).textDecorationLine")
    assert decoration == "line-through"


def test_keyboard_only_entry(operator: Any, console_server: Any) -> None:
    page = operator
    page.goto(FORM)
    for _ in range(60):
        if page.evaluate("document.activeElement && document.activeElement.id") == "f-product":
            break
        page.keyboard.press("Tab")
    else:
        pytest.fail("Tab never reached the first field")
    page.keyboard.type("luzerne clavier")
    _tab_to(page, "f-started_at")
    _type_datetime(page, "2026-11-21T08:00")
    _tab_to(page, "f-ended_at")
    _type_datetime(page, "2026-11-21T17:30")
    for target, text in (("f-mass_in_kg", "4000"), ("f-moisture_in_pct", "58"),
                         ("f-moisture_out_pct", "13")):
        _tab_to(page, target)
        page.keyboard.type(text)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    rows = [b for b in _live_batches(console_server) if b.product == "luzerne clavier"]
    assert len(rows) == 1
    # 08:00 Paris on 21 November (UTC+1) is 07:00 UTC; 17:30 is 16:30 UTC.
    assert rows[0].started_at == datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
    assert rows[0].ended_at == datetime(2026, 11, 21, 16, 30, tzinfo=UTC)
    assert rows[0].moisture_out_pct == 13.0


def _tab_to(page: Any, target: str) -> None:
    """Tab forward (at most 10 times) until the field `target` has the focus."""
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == target:
            return
    pytest.fail(f"Tab never reached {target}")


def _type_datetime(page: Any, value: str) -> None:
    """Type a date and time into the focused `datetime-local` field, the keys in the order of
    the browser's own format (read from the field: segments differ by locale)."""
    day, time = value.split("T")
    year, month, date = day.split("-")
    hour, minute = time.split(":")
    # Chromium's default (en-US) order is month, day, year, then hour, minute and AM/PM; a
    # segment full of digits moves on by itself, except the year (it takes up to six digits),
    # left with the right arrow.
    h = int(hour)
    page.keyboard.type(month + date + year)
    page.keyboard.press("ArrowRight")
    page.keyboard.type(f"{(h % 12) or 12:02d}{minute}")
    page.keyboard.type("P" if h >= 12 else "A")
    assert page.evaluate("document.activeElement.value") == value


def test_360_px_without_horizontal_scroll(operator: Any) -> None:
    page = operator
    page.set_viewport_size({"width": 360, "height": 740})
    for path in (LIST, f"{LIST}?annulees=1", FORM, "/registres", "/a-completer"):
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, path


def test_english_switch(operator: Any) -> None:
    page = operator
    page.goto(LIST)
    assert page.locator("h1").inner_text() == "Lots de séchage"
    with page.expect_navigation():
        page.click("a.lang")
    assert page.locator("h1").inner_text() == "Drying batches"
    page.goto(FORM)
    assert "Moisture out" in page.locator("label[for=f-moisture_out_pct]").inner_text()
    with page.expect_navigation():
        page.click("a.lang")
    assert page.locator("h1").inner_text().startswith("Nouvelle saisie")


def test_manual_fuel_delivery(operator: Any, console_server: Any) -> None:
    """The fields of the other entry type (a meter reading's) are not required of a
    delivery: the browser lets it through and the record service stores it."""
    page = operator
    page.goto("/registres/ariege/dryer/manual-activities/nouveau")
    page.select_option("#f-kind", "fuel_delivery")
    page.select_option("#f-carrier", "fuel_oil")
    page.fill("#f-quantity", "500")
    page.fill("#f-delivered_at", "2026-11-18T10:00")
    page.fill("#f-delivery_note", "BL-4471")
    with page.expect_navigation():
        page.click("form.record-form button[type=submit]")
    assert "/registres/ariege/dryer/manual-activities?fait=created" in page.url
    assert "BL-4471" in page.locator(".records").inner_text()


def test_post_without_csrf_is_403(operator: Any, console_server: Any) -> None:
    before = _count(console_server)
    response = operator.request.post(FORM, form={
        "product": "sans jeton", "started_at": "2026-11-22T08:00",
        "ended_at": "2026-11-22T09:00"}, max_redirects=0)
    assert response.status == 403
    assert _count(console_server) == before


def test_evaluator_reads_but_does_not_write_batches(
        page: Any, make_person: Callable[..., Any], login: Callable[..., None],
        console_server: Any, stored_batch: int) -> None:
    make_person("evaluatrice", PASSWORD, "evaluator", site="ariege")
    login(page, "evaluatrice", PASSWORD)
    page.goto(LIST)
    assert page.locator(f"#r{stored_batch}").count() == 1
    assert page.locator(f'a[href="{FORM}"]').count() == 0
    response = page.goto(FORM)
    assert response is not None and response.status == 403
    before = _count(console_server)
    csrf = page.evaluate(
        "document.querySelector('input[name=csrf_token]') && "
        "document.querySelector('input[name=csrf_token]').value")
    assert csrf  # the sign-out form of the refusal page carries the session's token
    posted = page.request.post(FORM, form={"csrf_token": csrf, "product": "interdit",
                                           "started_at": "2026-11-22T08:00",
                                           "ended_at": "2026-11-22T09:00"}, max_redirects=0)
    assert posted.status == 403
    assert _count(console_server) == before


def test_other_site_is_404(page: Any, make_person: Callable[..., Any],
                           login: Callable[..., None], stored_batch: int) -> None:
    make_person("voisin", PASSWORD, "operator", site="aude")
    login(page, "voisin", PASSWORD)
    for path in (LIST, FORM, f"{LIST}/{stored_batch}/modifier",
                 f"{LIST}/{stored_batch}/historique", f"{LIST}/{stored_batch}/annuler"):
        response = page.goto(path)
        assert response is not None and response.status == 404, path
    page.goto("/registres")
    assert page.locator("[data-equipment]").count() == 0


FREEZER = "/registres/ariege/freezer/batches"


def test_paging_reaches_every_record(operator: Any, console_server: Any) -> None:
    """120 freezer batches, one an hour: 50 a page, newest first, so page 1 holds n° 119 to
    70, page 2 69 to 20, page 3 19 to 0; the voided switch keeps its place in the links; an
    edit of batch 5 (114 batches are newer: 114 // 50 + 1 = page 3) lands on its page."""
    first = datetime(2026, 10, 1, 6, 0, tzinfo=UTC)
    with console_server.db() as db:
        stored = [Batch(site="ariege", equipment="freezer", product=f"congélation {i:03d}",
                        started_at=first + timedelta(hours=i),
                        ended_at=first + timedelta(hours=i, minutes=50), mass_in_kg=400.0,
                        created_by="test") for i in range(120)]
        db.add_all(stored)
        db.commit()
        ids = [row.id for row in stored]
    page = operator
    page.goto(FREEZER)
    titles = page.locator(".records article h2")
    assert titles.count() == 50
    assert "congélation 119" in titles.first.inner_text()
    assert "congélation 070" in titles.last.inner_text()
    assert "120" in page.locator("[data-pager=top] [data-count]").inner_text()
    with page.expect_navigation():
        page.click("[data-pager=top] a[data-page=next]")
    assert "page=2" in page.url
    assert "congélation 069" in titles.first.inner_text()
    with page.expect_navigation():
        page.click("[data-pager=bottom] a[data-page=last]")
    assert titles.count() == 20
    assert "congélation 000" in titles.last.inner_text()
    assert page.locator(f"#r{ids[0]}").count() == 1
    page.goto(f"{FREEZER}?annulees=1")
    assert "annulees=1" in (page.get_attribute("[data-pager=top] a[data-page=next]", "href")
                            or "")
    page.goto(f"{FREEZER}/{ids[5]}/modifier")
    page.fill("#f-product", "congélation 005 corrigée")
    with page.expect_navigation():
        page.click("form.record-form button[type=submit]")
    assert "page=3" in page.url and page.url.endswith(f"#r{ids[5]}")
    assert "corrigée" in page.locator(f"#r{ids[5]} h2").inner_text()
