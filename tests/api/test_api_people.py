"""People, console sessions and sign-in limits: the access code on a real database (SQLite and
PostgreSQL), the sign-in over HTTP on the api app, and the `dynamo users` commands."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.access import people, ratelimit, sessions
from api.access.people import PersonError, PersonRow
from api.access.ratelimit import Policy
from api.access.sessions import ConsoleSession
from api.access.tokens import TokenRole
from api.console.i18n import translate
from api.database import make_engine, migrate
from api.database import sessions as sessionmaker_of
from dynamo.cli import main

PASSWORD = "correct horse battery"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def db(database_url: str) -> Iterator[Session]:
    engine = make_engine(database_url)
    migrate(engine)
    with sessionmaker_of(engine)() as session:
        yield session
    engine.dispose()


def _make(db: Session, login: str = "ana", *, role: TokenRole = TokenRole.OPERATOR,
          site: str | None = "ariege") -> people.Person:
    return people.create_person(db, login=login, name=login.title(), role=role, site=site,
                                password=PASSWORD)


# ---- people ---------------------------------------------------------------------------------

def test_password_stored_as_argon2id_only(db: Session) -> None:
    person = _make(db, "  Ana.B  ")
    assert person.login == "ana.b"  # trimmed, lower case
    assert person.actor == "user:ana.b"
    row = people.find(db, login="ANA.B")
    assert row is not None
    assert row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash
    assert people.authenticate(db, login="Ana.B", password=PASSWORD) == person
    assert people.authenticate(db, login="ana.b", password=PASSWORD + "x") is None
    assert people.authenticate(db, login="nobody", password=PASSWORD) is None


def test_password_minimum_is_ten_characters_in_french(db: Session) -> None:
    with pytest.raises(PersonError) as refused:
        people.create_person(db, login="bob", name="Bob", role=TokenRole.OPERATOR, site=None,
                             password="123456789")  # 9 characters
    assert refused.value.field == "password"
    assert translate(f"users.{refused.value.key}", "fr", **refused.value.values) == (
        "Le mot de passe doit contenir au moins 10 caractères.")
    assert people.find(db, login="bob") is None
    people.create_person(db, login="bob", name="Bob", role=TokenRole.OPERATOR, site=None,
                         password="1234567890")  # 10: accepted


def test_login_rules(db: Session) -> None:
    _make(db, "ana")
    for login, field, key in [("ana", "login", "login_taken"), ("ANA", "login", "login_taken"),
                              ("a b", "login", "login_invalid"), ("", "login", "login_invalid"),
                              ("-x", "login", "login_invalid")]:
        with pytest.raises(PersonError) as refused:
            _make(db, login)
        assert (refused.value.field, refused.value.key) == (field, key)
    with pytest.raises(PersonError) as refused:
        people.create_person(db, login="eve", name=" ", role=TokenRole.ADMIN, site=None,
                             password=PASSWORD)
    assert refused.value.key == "name_required"


def test_old_hash_parameters_are_upgraded_at_sign_in(db: Session) -> None:
    _make(db)
    row = people.find(db, login="ana")
    assert row is not None
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    assert "m=8192,t=1,p=1" in weak
    row.password_hash = weak
    db.commit()
    assert people.authenticate(db, login="ana", password=PASSWORD) is not None
    db.refresh(row)
    # argon2-cffi's defaults (RFC 9106 low-memory profile): 64 MiB, 3 passes, 4 lanes.
    assert "$m=65536,t=3,p=4$" in row.password_hash
    assert people.authenticate(db, login="ana", password=PASSWORD) is not None


# ---- sessions -------------------------------------------------------------------------------

def test_idle_timeout_and_absolute_lifetime(db: Session) -> None:
    person = _make(db)
    # After the password was set: a session older than its password is refused.
    t0 = datetime.now(UTC)
    idle = timedelta(seconds=30)
    secret, _ = sessions.start(db, person=person, lifetime=HOUR, now=t0)
    assert len(secret) >= 43  # 32 random bytes, base64url
    stored = db.get(ConsoleSession, hashlib.sha256(secret.encode()).hexdigest())
    assert stored is not None and stored.person_id == person.id
    # 20 s idle < 30 s: alive, and seen again at t0+20 s (20 s ≥ min(30/10, 60) = 3 s).
    assert sessions.resolve(db, secret=secret, idle=idle, now=t0 + timedelta(seconds=20))
    # t0+45 s is 25 s after t0+20 s: alive; seen at t0+45 s.
    assert sessions.resolve(db, secret=secret, idle=idle, now=t0 + timedelta(seconds=45))
    # t0+75 s is 30 s after t0+45 s: idle for the whole timeout, ended.
    assert sessions.resolve(db, secret=secret, idle=idle, now=t0 + timedelta(seconds=75)) is None
    assert db.get(ConsoleSession, stored.id_sha256) is None
    # Used every 20 min, a 1 h session still ends at t0+1 h.
    secret, _ = sessions.start(db, person=person, lifetime=HOUR, now=t0)
    for minutes in (20, 40, 59):
        assert sessions.resolve(db, secret=secret, idle=timedelta(minutes=30),
                                now=t0 + timedelta(minutes=minutes))
    assert sessions.resolve(db, secret=secret, idle=timedelta(minutes=30), now=t0 + HOUR) is None


def test_disable_and_reset_end_sessions(db: Session) -> None:
    person = _make(db)
    idle = timedelta(minutes=30)
    first, _ = sessions.start(db, person=person, lifetime=HOUR)
    second, active = sessions.start(db, person=person, lifetime=HOUR)
    resolved = sessions.resolve(db, secret=first, idle=idle)
    assert resolved is not None and resolved.person == person
    assert resolved.csrf_token != active.csrf_token  # one token per session
    people.reset_password(db, login="ana", password="un-autre-mot-de-passe")
    assert sessions.resolve(db, secret=first, idle=idle) is None
    assert sessions.resolve(db, secret=second, idle=idle) is None
    assert people.authenticate(db, login="ana", password=PASSWORD) is None
    person = people.authenticate(db, login="ana", password="un-autre-mot-de-passe")
    assert person is not None
    third, _ = sessions.start(db, person=person, lifetime=HOUR)
    assert sessions.resolve(db, secret=third, idle=idle) is not None
    people.disable(db, login="ana")
    assert sessions.resolve(db, secret=third, idle=idle) is None
    assert people.authenticate(db, login="ana", password="un-autre-mot-de-passe") is None
    assert db.query(ConsoleSession).count() == 0


def test_session_of_disabled_person_refused_even_if_row_left(db: Session) -> None:
    # The check itself refuses, not only the delete done by `disable`.
    person = _make(db)
    secret, _ = sessions.start(db, person=person, lifetime=HOUR)
    row = db.get(PersonRow, person.id)
    assert row is not None
    row.disabled_at = datetime.now(UTC)
    db.commit()
    assert sessions.resolve(db, secret=secret, idle=HOUR) is None


# ---- sign-in limits -------------------------------------------------------------------------

POLICY = Policy(window=timedelta(minutes=15), per_login=5, per_address=20)


def test_five_failures_block_the_login_for_the_window(db: Session) -> None:
    minute = timedelta(minutes=1)
    for i in range(5):  # failures at T0, T0+1, …, T0+4 min
        assert ratelimit.blocked_until(db, login="ana", address="10.0.0.1", policy=POLICY,
                                       now=T0 + i * minute) is None
        ratelimit.record_failure(db, login="ana", address="10.0.0.1", policy=POLICY,
                                 now=T0 + i * minute)
    # Blocked until the oldest of the 5 (T0) leaves the 15 min window: T0+15 min.
    assert ratelimit.blocked_until(db, login="ana", address="10.0.0.1", policy=POLICY,
                                   now=T0 + 5 * minute) == T0 + 15 * minute
    # From another address too: the limit is the account's.
    assert ratelimit.blocked_until(db, login="ana", address="10.0.0.2", policy=POLICY,
                                   now=T0 + 14 * minute) == T0 + 15 * minute
    assert ratelimit.blocked_until(db, login="bob", address="10.0.0.2", policy=POLICY,
                                   now=T0 + 5 * minute) is None
    assert ratelimit.blocked_until(db, login="ana", address="10.0.0.1", policy=POLICY,
                                   now=T0 + 15 * minute) is None


def test_twenty_failures_block_the_address(db: Session) -> None:
    second = timedelta(seconds=1)
    for i in range(20):  # 20 logins tried once each from one address, T0 … T0+19 s
        ratelimit.record_failure(db, login=f"guess{i}", address="10.0.0.9", policy=POLICY,
                                 now=T0 + i * second)
    assert ratelimit.blocked_until(db, login="ana", address="10.0.0.9", policy=POLICY,
                                   now=T0 + 20 * second) == T0 + timedelta(minutes=15)
    assert ratelimit.blocked_until(db, login="ana", address="10.0.0.8", policy=POLICY,
                                   now=T0 + 20 * second) is None


def test_success_clears_the_login_not_the_address(db: Session) -> None:
    for i in range(4):
        ratelimit.record_failure(db, login="ana", address="10.0.0.1", policy=POLICY,
                                 now=T0 + timedelta(seconds=i))
    ratelimit.clear(db, login="ana")
    strict = Policy(window=timedelta(minutes=15), per_login=1, per_address=4)
    assert ratelimit.blocked_until(db, login="ana", address="10.0.0.2", policy=strict,
                                   now=T0 + timedelta(seconds=5)) is None
    assert ratelimit.blocked_until(db, login="ana", address="10.0.0.1", policy=strict,
                                   now=T0 + timedelta(seconds=5)) is None  # cleared with login


# ---- over HTTP, on the api app --------------------------------------------------------------

def _login_token(client: TestClient) -> str:
    page = client.get("http://127.0.0.1/connexion")
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def _sign_in(client: TestClient, login: str, password: str) -> httpx.Response:
    return client.post("http://127.0.0.1/connexion", follow_redirects=False,
                       data={"login": login, "password": password, "next": "/utilisateurs",
                             "csrf_token": _login_token(client)})


def test_sign_in_over_http(make_client: Callable[..., TestClient]) -> None:
    client = make_client(role=None, console_login_failures_per_login=2)
    with client.app.state.sessions() as db:  # type: ignore[attr-defined]
        _make(db, "ana", role=TokenRole.ADMIN, site=None)
    wrong = _sign_in(client, "ana", "mauvais mot de passe")
    assert wrong.status_code == 401
    assert "Identifiant ou mot de passe incorrect." in wrong.text
    ok = _sign_in(client, "ana", PASSWORD)
    assert ok.status_code == 303
    assert ok.headers["location"] == "/utilisateurs"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert client.get("http://127.0.0.1/utilisateurs").status_code == 200
    client.cookies.delete("dynamo_session")  # signed out again
    # Two failures (the limit set above) lock the login; the right password is not even tried.
    for _ in range(2):
        assert _sign_in(client, "ana", "encore faux!").status_code == 401
    locked = _sign_in(client, "ana", PASSWORD)
    assert locked.status_code == 429
    assert "Réessayez dans 15 min." in locked.text


def test_session_does_not_open_the_api_and_tokens_still_do(
        make_client: Callable[..., TestClient]) -> None:
    client = make_client(role=TokenRole.ADMIN)
    assert client.get("/equipment").status_code == 200  # bearer token, as before
    with client.app.state.sessions() as db:  # type: ignore[attr-defined]
        _make(db, "ana", role=TokenRole.ADMIN, site=None)
    assert _sign_in(client, "ana", PASSWORD).status_code == 303
    del client.headers["Authorization"]
    assert client.get("/equipment").status_code == 401  # a console cookie is no api token


def test_refusal_page_is_french_html(make_client: Callable[..., TestClient]) -> None:
    client = make_client(role=None)
    with client.app.state.sessions() as db:  # type: ignore[attr-defined]
        _make(db, "ana", role=TokenRole.OPERATOR, site="ariege")
    assert _sign_in(client, "ana", PASSWORD).status_code == 303
    refused = client.get("http://127.0.0.1/utilisateurs")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert "Action non autorisée." in refused.text
    no_token = client.post("http://127.0.0.1/deconnexion", data={})
    assert no_token.status_code == 403
    assert "Formulaire expiré ou invalide" in no_token.text


# ---- the command line -----------------------------------------------------------------------

def test_users_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    runner = CliRunner(env={"DYNAMO_API_DATABASE_URL": url})
    created = runner.invoke(main, ["users", "create", "Paul", "--name", "Paul Froid",
                                   "--role", "operator", "--site", "ariege",
                                   "--password-stdin"], input="chambre-froide-1\n")
    assert created.exit_code == 0, created.output
    assert "created paul (operator, ariege)" in created.output
    short = runner.invoke(main, ["users", "create", "zoe", "--name", "Zoé", "--role", "admin",
                                 "--password-stdin"], input="court\n")
    assert short.exit_code == 1
    assert "password: The password must have at least 10 characters." in short.output
    prompted = runner.invoke(main, ["users", "create", "zoe", "--name", "Zoé", "--role",
                                    "admin"], input="admin-zoe-2026\nadmin-zoe-2026\n")
    assert prompted.exit_code == 0, prompted.output
    listed = runner.invoke(main, ["users", "list"])
    lines = listed.output.strip().splitlines()
    assert [line.split("\t")[:4] for line in lines] == [
        ["paul", "operator", "ariege", "Paul Froid"], ["zoe", "admin", "*", "Zoé"]]
    assert runner.invoke(main, ["users", "reset-password", "paul", "--password-stdin"],
                         input="nouveau-froid-2\n").exit_code == 0
    assert runner.invoke(main, ["users", "disable", "zoe"]).exit_code == 0
    missing = runner.invoke(main, ["users", "disable", "nobody"])
    assert missing.exit_code == 1 and "No account with this login." in missing.output
    engine = make_engine(url)
    with sessionmaker_of(engine)() as db:
        assert people.authenticate(db, login="paul", password="chambre-froide-1") is None
        assert people.authenticate(db, login="paul", password="nouveau-froid-2") is not None
        assert people.authenticate(db, login="zoe", password="admin-zoe-2026") is None
    engine.dispose()
