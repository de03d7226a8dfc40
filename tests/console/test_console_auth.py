"""Signing in to the console and managing people, in Debian's Chromium against a real server
(uvicorn, SQLite, the suite's influxd and mosquitto: tests/console/conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from api.access import people

PASSWORD = "foin-sec-2026"  # 13 characters: above the 10-character minimum
WRONG = "Identifiant ou mot de passe incorrect."


def _fill_login(page: Any, login: str, password: str) -> Any:
    page.goto("/connexion")
    page.fill("#login", login)
    page.fill("#password", password)
    with page.expect_navigation() as navigation:
        page.click("form.login-form button[type=submit]")
    return navigation.value


def test_signed_out_page_goes_to_login_and_back(page: Any, make_person: Callable[..., Any],
                                                login: Callable[..., None]) -> None:
    make_person("admin-a", PASSWORD, "admin")
    page.goto("/utilisateurs")
    assert page.url.endswith("/connexion?next=%2Futilisateurs")
    assert page.locator("h1").inner_text() == "Connexion"
    page.fill("#login", "Admin-A")  # logins are case-insensitive
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/utilisateurs")
    assert page.locator("h1").inner_text() == "Utilisateurs"


def test_session_cookie_is_httponly_strict(page: Any, make_person: Callable[..., Any],
                                           login: Callable[..., None]) -> None:
    make_person("cookie-a", PASSWORD, "operator", site="ariege")
    login(page, "cookie-a", PASSWORD)
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["dynamo_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Strict"
    assert session["path"] == "/"
    assert session["secure"] is False  # plain http on loopback; "auto" sets it under https


def test_wrong_password_and_unknown_login_give_one_message(
        page: Any, make_person: Callable[..., Any]) -> None:
    make_person("wrong-a", PASSWORD, "operator", site="ariege")
    response = _fill_login(page, "wrong-a", "pas-le-bon-mot")
    assert response.status == 401
    assert page.locator("#login-error").inner_text() == WRONG
    assert page.input_value("#login") == "wrong-a"  # kept, the password is not
    assert page.input_value("#password") == ""
    _fill_login(page, "nobody-here", "pas-le-bon-mot")
    assert page.locator("#login-error").inner_text() == WRONG


def test_rate_limit_message_after_five_failures(page: Any,
                                                make_person: Callable[..., Any]) -> None:
    make_person("limited-a", PASSWORD, "operator", site="ariege")
    for _ in range(5):
        assert _fill_login(page, "limited-a", "mauvais-mot-de-passe").status == 401
    # The sixth attempt is refused before the password is looked at, even the right one; the
    # first failure leaves the 15-minute window in just under 15 minutes: "15 min" (rounded up).
    response = _fill_login(page, "limited-a", PASSWORD)
    assert response.status == 429
    assert page.locator("#login-error").inner_text() == (
        "Trop de tentatives de connexion. Réessayez dans 15 min.")
    assert "/connexion" in page.url


def test_post_without_csrf_token_is_refused(page: Any, make_person: Callable[..., Any],
                                            login: Callable[..., None],
                                            console_server: Any) -> None:
    make_person("csrf-admin", PASSWORD, "admin")
    login(page, "csrf-admin", PASSWORD)
    fields = {"login": "csrf-victim", "name": "Victime", "role": "admin", "site": "",
              "password": "assez-long-pour-passer"}
    refused = page.request.post("/utilisateurs", form=fields, max_redirects=0)
    assert refused.status == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert "Formulaire expiré ou invalide : rechargez la page et recommencez." in refused.text()
    forged = page.request.post("/utilisateurs", form={**fields, "csrf_token": "x" * 43},
                               max_redirects=0)
    assert forged.status == 403
    with console_server.db() as db:
        assert people.find(db, login="csrf-victim") is None
    # Sign-out is a POST too: without its token the session survives.
    assert page.request.post("/deconnexion", form={}, max_redirects=0).status == 403
    page.goto("/utilisateurs")
    assert page.url.endswith("/utilisateurs")
    # The login form carries its own token (a cookie repeated in the form).
    anonymous = httpx.post(f"{console_server.base_url}/connexion",
                           data={"login": "csrf-admin", "password": PASSWORD}, timeout=10)
    assert anonymous.status_code == 403


def test_idle_session_goes_back_to_login(page: Any, make_person: Callable[..., Any],
                                         login: Callable[..., None],
                                         console_server: Any) -> None:
    make_person("idle-admin", PASSWORD, "admin")
    login(page, "idle-admin", PASSWORD)
    page.goto("/utilisateurs")
    assert page.url.endswith("/utilisateurs")
    with console_server.overridden(console_idle_timeout_s=1):
        time.sleep(1.5)  # idle longer than the 1 s timeout
        page.goto("/utilisateurs")
        assert unquote(page.url).endswith("/connexion?next=/utilisateurs")
    # The session is gone server-side: a normal timeout does not bring it back.
    page.goto("/utilisateurs")
    assert "/connexion" in page.url


def test_logout_ends_the_session_server_side(page: Any, make_person: Callable[..., Any],
                                             login: Callable[..., None],
                                             console_server: Any) -> None:
    make_person("bye-admin", PASSWORD, "admin")
    login(page, "bye-admin", PASSWORD)
    page.goto("/utilisateurs")
    secret = {c["name"]: c["value"] for c in page.context.cookies()}["dynamo_session"]
    with page.expect_navigation():
        page.click("header form[action='/deconnexion'] button")
    assert page.url.endswith("/connexion")
    # The old cookie, replayed, opens nothing: the session row was deleted.
    replay = httpx.get(f"{console_server.base_url}/utilisateurs",
                       cookies={"dynamo_session": secret}, timeout=10)
    assert replay.status_code == 303
    assert replay.headers["location"] == "/connexion?next=%2Futilisateurs"
    fragment = httpx.get(f"{console_server.base_url}/utilisateurs", timeout=10,
                         cookies={"dynamo_session": secret},
                         headers={"X-Console-Fragment": "1"})
    assert fragment.status_code == 401


def test_admin_creates_an_operator(page: Any, browser: Any, make_person: Callable[..., Any],
                                  login: Callable[..., None], console_server: Any) -> None:
    make_person("boss-a", PASSWORD, "admin")
    login(page, "boss-a", PASSWORD)
    page.goto("/utilisateurs")
    page.fill("#new-login", "Marie.Dryer")
    page.fill("#new-name", "Marie Séchoir")
    page.select_option("#new-role", "operator")
    page.select_option("#new-site", "ariege")
    page.fill("#new-password", "court")  # 5 characters: refused
    with page.expect_navigation() as navigation:
        page.click("form.create-form button[type=submit]")
    assert navigation.value.status == 422
    assert page.locator("#error-password").inner_text() == (
        "Le mot de passe doit contenir au moins 10 caractères.")
    assert page.get_attribute("#new-password", "aria-invalid") == "true"
    assert page.input_value("#new-name") == "Marie Séchoir"  # what was typed stays
    with console_server.db() as db:
        assert people.find(db, login="marie.dryer") is None
    page.fill("#new-password", "sechoir-2026-ok")
    with page.expect_navigation():
        page.click("form.create-form button[type=submit]")
    assert page.locator("p.notice[role=status]").inner_text() == "Compte créé."
    row = page.locator("#person-marie\\.dryer")
    assert "Marie Séchoir" in row.inner_text()
    assert "opérateur" in row.inner_text()
    assert "ariege" in row.inner_text()
    # The new operator signs in, in a browser of their own.
    context = browser.new_context(base_url=console_server.base_url)
    try:
        theirs = context.new_page()
        login(theirs, "marie.dryer", "sechoir-2026-ok")
        assert "/connexion" not in theirs.url
    finally:
        context.close()


def test_admin_disables_and_resets(page: Any, browser: Any, make_person: Callable[..., Any],
                                   login: Callable[..., None], console_server: Any) -> None:
    make_person("boss-b", PASSWORD, "admin")
    make_person("leaving-a", PASSWORD, "admin")
    context = browser.new_context(base_url=console_server.base_url)
    try:
        theirs = context.new_page()
        login(theirs, "leaving-a", PASSWORD)
        theirs.goto("/utilisateurs")
        assert theirs.url.endswith("/utilisateurs")
        login(page, "boss-b", PASSWORD)
        page.goto("/utilisateurs")
        page.fill("#reset-leaving-a", "trop-court")  # exactly 10: accepted
        with page.expect_navigation():
            page.click("#person-leaving-a form.reset-form button")
        assert "sessions ouvertes de ce compte sont fermées" in page.inner_text("main")
        theirs.goto("/utilisateurs")
        assert "/connexion" in theirs.url  # the reset ended their session
        login(theirs, "leaving-a", "trop-court")
        with page.expect_navigation():
            page.click("#person-leaving-a form.disable-form button")
        assert "Compte désactivé" in page.inner_text("main")
        theirs.goto("/utilisateurs")
        assert "/connexion" in theirs.url  # and so did disabling them
        assert _fill_login(theirs, "leaving-a", "trop-court").status == 401
    finally:
        context.close()


def test_operator_gets_403_on_users_page(page: Any, make_person: Callable[..., Any],
                                         login: Callable[..., None]) -> None:
    make_person("oper-a", PASSWORD, "operator", site="ariege")
    login(page, "oper-a", PASSWORD)
    response = page.goto("/utilisateurs")
    assert response is not None and response.status == 403
    assert page.locator("h1").inner_text() == "Demande refusée"
    assert page.locator("main [role=alert]").inner_text() == "Action non autorisée."
    assert page.locator("nav a[href='/utilisateurs']").count() == 0


def test_keyboard_only_login(page: Any, make_person: Callable[..., Any]) -> None:
    make_person("keys-a", PASSWORD, "admin")
    page.goto("/connexion?next=/utilisateurs")
    for _ in range(15):  # Tab through the header until the login field has the focus
        if page.evaluate("document.activeElement && document.activeElement.id") == "login":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "login"
    page.keyboard.type("keys-a")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/utilisateurs")


def test_login_fits_a_360_px_phone(browser: Any, console_server: Any) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740},
                                  base_url=console_server.base_url)
    try:
        phone = context.new_page()
        phone.goto("/connexion")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360
        for selector in ("#login", "#password", "form.login-form button[type=submit]"):
            box = phone.locator(selector).bounding_box()
            assert box is not None and box["height"] >= 48  # a gloved finger's target
            assert box["x"] >= 0 and box["x"] + box["width"] <= 360
    finally:
        context.close()


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x"])
def test_next_never_leaves_the_site(page: Any, make_person: Callable[..., Any],
                                    login: Callable[..., None], console_server: Any,
                                    target: str) -> None:
    make_person("next-a", PASSWORD, "admin")
    page.goto(f"/connexion?next={target}")
    page.fill("#login", "next-a")
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("form.login-form button[type=submit]")
    assert page.url.startswith(console_server.base_url)
