"""The electricity contracts and base-year pages in the real browser: an evaluator's contract
refused with French errors next to the field (negative factor, then last day before the first),
fixed and listed, and the freezer's market-based scope 2 of the api using its factor; an edit
from an old version refused; a void with its reason; operators read only (no button, 403 on
the POST); another site's person gets 404; an admin sets the base year and sees the frozen
figures, setting it again is refused in French; 360 px without horizontal scroll."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from api.access import people
from api.access.tokens import TokenRole, create_token
from api.accounting.rollups import run_rollups
from api.records.contracts import ElectricityContract
from telemetry.influx.client import InfluxClient
from telemetry.influx.lineprotocol import line

PASSWORD = "contract-password-1"
LIST = "/registres/ariege/contrats-electricite"
FORM = f"{LIST}/nouveau"
BASE_YEAR = "/indicateurs/ariege/freezer/annee-de-reference"
# 20 November 2026, Paris is UTC+1: 08:00 to 18:00 local.
START_UTC = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
END_UTC = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)


def _signed_in(browser: Any, console_server: Any, login: str, role: TokenRole,
               site: str | None) -> Any:
    with console_server.db() as db:
        if people.find(db, login=login) is None:
            people.create_person(db, login=login, name=login, role=role, site=site,
                                 password=PASSWORD)
    context = browser.new_context(viewport={"width": 1280, "height": 800},
                                  base_url=console_server.base_url)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.goto("/connexion")
    tab.fill("#login", login)
    tab.fill("#password", PASSWORD)
    with tab.expect_navigation():
        tab.click("form.login-form button[type=submit]")
    tab.close()
    return context


@pytest.fixture(scope="module")
def evaluator_context(browser: Any, console_server: Any) -> Iterator[Any]:
    context = _signed_in(browser, console_server, "evaluatrice", TokenRole.EVALUATOR, "ariege")
    yield context
    context.close()


@pytest.fixture(scope="module")
def operator_context(browser: Any, console_server: Any) -> Iterator[Any]:
    context = _signed_in(browser, console_server, "surgeleur", TokenRole.OPERATOR, "ariege")
    yield context
    context.close()


@pytest.fixture
def evaluator(evaluator_context: Any) -> Iterator[Any]:
    tab = evaluator_context.new_page()
    yield tab
    tab.close()


@pytest.fixture
def operator(operator_context: Any) -> Iterator[Any]:
    tab = operator_context.new_page()
    yield tab
    tab.close()


@pytest.fixture(scope="module")
def api_token(console_server: Any) -> str:
    with console_server.db() as db:
        return create_token(db, role=TokenRole.ADMIN, site=None, name="contracts test")


@pytest.fixture(scope="module")
def freezer_energy(console_server: Any) -> None:
    """The freezer's electricity counter rising 0.2 kWh a minute from 5000 kWh over the 10
    hours, one reading a minute: 600 minutes × 0.2 = 120 kWh used."""
    settings = console_server.settings
    eq = console_server.app.state.registry.get("ariege", "freezer")
    sensor = next(s for s in eq.sensors if s.id == "freezer.electric")
    tags = {"site": "ariege", "gateway": eq.gateway, "equipment": "freezer",
            "device": sensor.device, "sensor": sensor.id, "unit": sensor.unit,
            "quality": "good"}
    lines = [line("readings", tags, {"value": 5000.0 + minute * 0.2},
                  int((START_UTC + timedelta(minutes=minute)).timestamp() * 1000))
             for minute in range(0, 10 * 60 + 1)]
    client = InfluxClient(url=settings.influx_url, database=settings.influx_db)
    try:
        client.write(lines)
    finally:
        client.close()


def _freezer_ghg(console_server: Any, token: str) -> dict[str, Any]:
    response = httpx.get(
        f"{console_server.base_url}/api/v1/sites/ariege/equipment/freezer/indicators",
        params={"start": START_UTC.isoformat(), "end": END_UTC.isoformat()},
        headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200, response.text
    ghg: dict[str, Any] = response.json()["ghg"]
    return ghg


def _contracts(console_server: Any) -> list[ElectricityContract]:
    with console_server.db() as db:
        return list(db.scalars(select(ElectricityContract).filter_by(site="ariege")
                               .order_by(ElectricityContract.id)))


def _submit(page: Any) -> None:
    with page.expect_navigation():
        page.click("#contract-form button[type=submit]")


def test_wrong_fields_then_saved_and_the_market_based_figure(
        evaluator: Any, console_server: Any, api_token: str, freezer_energy: None) -> None:
    page = evaluator
    before = len(_contracts(console_server))
    page.goto(LIST)
    with page.expect_navigation():
        page.click("#new-contract")
    assert page.url.endswith(FORM)
    page.fill("#f-supplier", "Coopérative d'énergie")
    page.fill("#f-product", "Offre verte locale")
    page.fill("#f-factor_kg_per_kwh", "-0,05")
    page.fill("#f-factor_source", "Déclaration du fournisseur 2026")
    page.fill("#f-valid_from", "2026-11-01")
    page.fill("#f-valid_to", "2026-10-15")
    _submit(page)
    # The factor is checked first (a field), the period after (the whole contract).
    assert page.get_attribute("#f-factor_kg_per_kwh", "aria-invalid") == "true"
    assert page.inner_text("#err-factor_kg_per_kwh") == (
        "La valeur doit être supérieure ou égale à 0")
    assert "Corrigez les champs signalés" in page.inner_text("[role=alert]")
    assert page.input_value("#f-supplier") == "Coopérative d'énergie"
    assert len(_contracts(console_server)) == before
    page.fill("#f-factor_kg_per_kwh", "0,05")
    _submit(page)
    assert page.get_attribute("#f-valid_to", "aria-invalid") == "true"
    assert page.inner_text("#err-valid_to") == "La fin doit être postérieure au début"
    assert page.locator("#err-factor_kg_per_kwh").count() == 0
    assert len(_contracts(console_server)) == before
    page.fill("#f-valid_to", "2026-11-30")
    _submit(page)
    assert "fait=created" in page.url
    rows = _contracts(console_server)
    assert len(rows) == before + 1
    row = rows[-1]
    assert row.factor_kg_per_kwh == 0.05 and row.created_by == "user:evaluatrice"
    # The last day included, 30 November, ends at 1 December 00:00 Paris = 30 Nov 23:00 UTC.
    assert row.valid_to == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert row.valid_from == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    card = page.locator(f"#c{row.id}")
    assert "Coopérative d'énergie" in card.inner_text()
    assert card.locator("[data-field=factor_kg_per_kwh]").inner_text() == "0,05\u202fkg CO₂e/kWh"
    assert card.locator("[data-field=period]").inner_text() == (
        "du 01/11/2026 au 30/11/2026 inclus")
    # Market-based scope 2 over the 10 hours: 120 kWh × 0.05 kg CO2e/kWh = 6.0 kg CO2e.
    ghg = _freezer_ghg(console_server, api_token)
    assert ghg["scope2_market_co2e_kg"] == pytest.approx(6.0, rel=1e-6)
    market = [x for x in ghg["lines"] if x["scope2_method"] == "market"]
    assert [x["factor_id"] for x in market] == [f"contract-{row.id}"]
    assert market[0]["quantity"] == pytest.approx(120.0, rel=1e-6)


def test_edit_from_an_old_version_is_refused_and_void_needs_a_reason(
        evaluator: Any, evaluator_context: Any, console_server: Any) -> None:
    with console_server.db() as db:
        row = ElectricityContract(
            site="ariege", supplier="Ancien fournisseur", product="Base", factor_kg_per_kwh=0.06,
            factor_source="Déclaration 2024", valid_from=datetime(2024, 1, 1, tzinfo=UTC),
            valid_to=datetime(2025, 1, 1, tzinfo=UTC), created_by="test")
        db.add(row)
        db.commit()
        ident = row.id
    first, second = evaluator, evaluator_context.new_page()
    try:
        first.goto(f"{LIST}/{ident}/modifier")
        second.goto(f"{LIST}/{ident}/modifier")
        assert first.input_value("input[name=version]") == "1"
        first.fill("#f-product", "Base 2024")
        _submit(first)
        assert "fait=edited" in first.url
        second.fill("#f-product", "Base (autre onglet)")
        _submit(second)
        assert "modifié entre-temps par evaluatrice" in second.inner_text("#conflict")
    finally:
        second.close()
    with console_server.db() as db:
        stored = db.get(ElectricityContract, ident)
        assert stored is not None and stored.product == "Base 2024" and stored.version == 2
    page = evaluator
    page.goto(f"{LIST}/{ident}/annuler")
    with page.expect_navigation():
        page.click("form.void-form button[type=submit]")
    assert page.inner_text("#err-reason") == "Indiquez le motif de l'annulation."
    page.fill("#f-reason", "contrat saisi en double")
    with page.expect_navigation():
        page.click("form.void-form button[type=submit]")
    assert "fait=voided" in page.url
    assert page.locator(f"#c{ident}").count() == 0
    page.goto(f"{LIST}?annulees=1")
    assert "contrat saisi en double" in page.inner_text(f"#c{ident} .void-reason")
    # Its history, newest first: the void with its reason, the edit with before and after
    # (the row was stored by the test, not through the service: no creation entry).
    with page.expect_navigation():
        page.click(f"#c{ident} a[data-history]")
    entries = page.locator("ol.history > li")
    assert [entries.nth(i).get_attribute("data-action") for i in range(entries.count())] == [
        "void", "edit"]
    assert entries.nth(0).locator("[data-reason]").inner_text() == "contrat saisi en double"
    assert entries.nth(0).locator("[data-who]").inner_text() == "evaluatrice"
    product = entries.nth(1).locator("tr", has_text="Offre")
    assert product.locator("[data-before]").inner_text() == "Base"
    assert product.locator("[data-after]").inner_text() == "Base 2024"


def test_a_double_click_stores_one_contract(evaluator: Any, console_server: Any) -> None:
    page = evaluator
    page.goto(FORM)
    form = {name: page.input_value(f"input[name={name}]")
            for name in ("csrf_token", "idempotency_key")}
    form.update({"supplier": "Double clic", "product": "Offre", "factor_kg_per_kwh": "0,2",
                 "factor_source": "Déclaration 2023", "valid_from": "2023-01-01",
                 "valid_to": "2023-12-31"})
    before = len(_contracts(console_server))
    for _ in range(2):
        response = page.request.post(FORM, form=form, max_redirects=0)
        assert response.status == 303
    assert len(_contracts(console_server)) == before + 1


def test_operator_reads_only(operator: Any) -> None:
    page = operator
    response = page.goto(LIST)
    assert response is not None and response.status == 200
    assert page.locator("#new-contract").count() == 0
    assert "Lecture seule" in page.inner_text("main")
    assert page.goto(FORM).status == 403
    csrf = page.evaluate("document.querySelector('input[name=csrf_token]').value")
    posted = page.request.post(FORM, form={
        "csrf_token": csrf, "supplier": "x", "product": "y", "factor_kg_per_kwh": "0.1",
        "factor_source": "abc", "valid_from": "2026-01-01"}, max_redirects=0)
    assert posted.status == 403


def test_records_index_links_the_contracts(operator: Any) -> None:
    operator.goto("/registres")
    with operator.expect_navigation():
        operator.click("a[data-contracts=ariege]")
    assert operator.url.endswith(LIST)


def test_other_site_is_404(page: Any, make_person: Callable[..., Any],
                           login: Callable[..., None]) -> None:
    make_person("evaluateur-ailleurs", PASSWORD, TokenRole.EVALUATOR, site="autre-site")
    login(page, "evaluateur-ailleurs", PASSWORD)
    for path in (LIST, FORM, BASE_YEAR, f"{LIST}/1/historique"):
        response = page.goto(path)
        assert response is not None and response.status == 404, path


@pytest.fixture(scope="module")
def freezer_2025(console_server: Any) -> int:
    """Base-year material: the freezer's counter rising 0.5 kWh a minute on 10 June 2025 from
    08:00 to 10:00 UTC (120 minutes × 0.5 = 60 kWh) with its hourly rollups, and a 2025
    contract at 0.1 kg CO2e/kWh covering the whole year (Paris midnights)."""
    settings = console_server.settings
    eq = console_server.app.state.registry.get("ariege", "freezer")
    sensor = next(s for s in eq.sensors if s.id == "freezer.electric")
    tags = {"site": "ariege", "gateway": eq.gateway, "equipment": "freezer",
            "device": sensor.device, "sensor": sensor.id, "unit": sensor.unit,
            "quality": "good"}
    first = datetime(2025, 6, 10, 8, 0, tzinfo=UTC)
    lines = [line("readings", tags, {"value": 3000.0 + minute * 0.5},
                  int((first + timedelta(minutes=minute)).timestamp() * 1000))
             for minute in range(0, 2 * 60 + 1)]
    client = InfluxClient(url=settings.influx_url, database=settings.influx_db)
    try:
        client.write(lines)
    finally:
        client.close()
    # A year's figures are summed from the hourly rollups (the server's scheduler is off).
    run_rollups(registry=console_server.app.state.registry, store=console_server.app.state.store,
                start=datetime(2025, 6, 10, 6, 0, tzinfo=UTC),
                end=datetime(2025, 6, 10, 12, 0, tzinfo=UTC), around=timedelta(hours=6),
                max_gap=timedelta(minutes=5))
    with console_server.db() as db:
        row = ElectricityContract(
            site="ariege", supplier="Fournisseur 2025", product="Offre 2025",
            factor_kg_per_kwh=0.1, factor_source="Déclaration du fournisseur 2025",
            valid_from=datetime(2024, 12, 31, 23, 0, tzinfo=UTC),
            valid_to=datetime(2025, 12, 31, 23, 0, tzinfo=UTC), created_by="test")
        db.add(row)
        db.commit()
        return row.id


def test_admin_sets_the_base_year(page: Any, make_person: Callable[..., Any],
                                  login: Callable[..., None], freezer_2025: int) -> None:
    make_person("administratrice", PASSWORD, TokenRole.ADMIN)
    login(page, "administratrice", PASSWORD)
    page.goto("/indicateurs/ariege/freezer")
    with page.expect_navigation():
        page.click("a[data-link=base-year]")
    assert page.url.endswith(BASE_YEAR)
    assert page.locator("#base-year-not-set").count() == 1
    page.fill("#f-year", "2025")
    with page.expect_navigation():
        page.click("#base-year-form button[type=submit]")
    assert "fait=set" in page.url
    assert page.get_attribute("#base-year", "data-year") == "2025"
    assert "Année 2025, fixée le" in page.inner_text("#base-year")
    # Frozen 2025 market-based scope 2: 60 kWh × 0.1 kg CO2e/kWh = 6.0 kg CO2e; nothing has
    # moved yet.
    market = page.locator("tr[data-figure='ghg.scope2_market_co2e_kg']")
    assert float(market.get_attribute("data-frozen") or "nan") == pytest.approx(6.0, rel=1e-6)
    assert market.locator("[data-cell=frozen]").inner_text() == "6,00\u202fkg CO₂e"
    assert page.locator("#unchanged").count() == 1
    # Setting 2025 again is refused in French.
    page.fill("#f-year", "2025")
    with page.expect_navigation():
        page.click("#base-year-form button[type=submit]")
    assert "déjà fixée à 2025" in page.inner_text("#err-year")
    assert page.get_attribute("#f-year", "aria-invalid") == "true"
    # The 2025 contract corrected to 0.15 through the console: recalculated 60 × 0.15 = 9.0
    # kg, +50 % ((9 − 6) / 6), the original 6.0 kept beside it, and the edit as the reason.
    page.goto(f"{LIST}/{freezer_2025}/modifier")
    page.fill("#f-factor_kg_per_kwh", "0,15")
    _submit(page)
    assert "fait=edited" in page.url
    page.goto(BASE_YEAR)
    market = page.locator("tr[data-figure='ghg.scope2_market_co2e_kg']")
    assert float(market.get_attribute("data-frozen") or "nan") == pytest.approx(6.0, rel=1e-6)
    assert float(market.get_attribute("data-recalculated") or "nan") == pytest.approx(
        9.0, rel=1e-6)
    assert market.locator("[data-cell=recalculated]").inner_text() == "9,00\u202fkg CO₂e"
    assert "50,0\u202f%" in market.inner_text()
    reasons = page.inner_text("tr[data-reasons-of='ghg.scope2_market_co2e_kg']")
    assert f"Contrat d'électricité n° {freezer_2025} : modifié, version 1 → 2" in reasons
    with page.expect_navigation():
        page.click("#record-recalculation")
    assert "fait=recalculated" in page.url
    assert "Recalcul enregistré le" in page.inner_text("#recorded")
    # The original stays as frozen.
    market = page.locator("tr[data-figure='ghg.scope2_market_co2e_kg']")
    assert float(market.get_attribute("data-frozen") or "nan") == pytest.approx(6.0, rel=1e-6)


def test_base_year_is_read_only_for_an_operator(operator: Any) -> None:
    response = operator.goto(BASE_YEAR)
    assert response is not None and response.status == 200
    assert operator.locator("#base-year-form").count() == 0
    csrf = operator.evaluate("document.querySelector('input[name=csrf_token]').value")
    posted = operator.request.post(BASE_YEAR, form={"csrf_token": csrf, "year": "2024"},
                                   max_redirects=0)
    assert posted.status == 403


def test_360_px_without_horizontal_scroll(evaluator: Any) -> None:
    page = evaluator
    page.set_viewport_size({"width": 360, "height": 740})
    for path in (LIST, f"{LIST}?annulees=1", FORM, BASE_YEAR):
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, path
