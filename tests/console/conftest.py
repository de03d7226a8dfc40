"""The console against real services: a uvicorn server on a free loopback port serving
`api.app.create_app` (temporary SQLite, the Ariège sites, the suite's influxd and mosquitto),
and Debian's Chromium driven by Playwright.

Fixtures:
- `console_server` (module): `.base_url`, `.app`, `.settings`, `.db` (a sessionmaker on the
  server's database) and `.overridden(**settings)` (a context manager that swaps settings read
  per request, e.g. `console_idle_timeout_s`). `console_app` is its FastAPI app. A test module
  may define a module-scoped `console_overrides` fixture (a dict of `ApiSettings` fields) to
  start its server with other settings.
- `make_person(login, password, role, site=None)`: a person through `api.access.people`; the
  database lives as long as the module, so a login already made is given the new password,
  role and site rather than refused.
- `browser` (session): headless Chromium; `page`: a new context per test (1280×800,
  `base_url` set: `page.goto("/registres")` works); `login(page, login, password)`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from api.access import people
from api.access.people import Person, PersonRow
from api.access.tokens import TokenRole
from api.app import create_app
from api.settings import ApiSettings
from dynamo.devservices import InfluxdProcess, MosquittoProcess
from telemetry.influx.client import InfluxClient

REPO = Path(__file__).resolve().parents[2]
ARIEGE = REPO / "firmware-config" / "sites" / "ariege"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
START_TIMEOUT_S = 30.0


@dataclass
class ConsoleServer:
    base_url: str
    app: FastAPI
    settings: ApiSettings

    @property
    def db(self) -> sessionmaker[Session]:
        maker: sessionmaker[Session] = self.app.state.sessions
        return maker

    @contextlib.contextmanager
    def overridden(self, **fields: Any) -> Iterator[ApiSettings]:
        """Settings read per request (session timeouts, sign-in limits) changed for a while."""
        before = self.app.state.settings
        self.app.state.settings = before.model_copy(update=fields)
        try:
            yield self.app.state.settings
        finally:
            self.app.state.settings = before


@pytest.fixture(scope="module")
def console_overrides() -> dict[str, Any]:
    """Settings of this module's server (override in a test module)."""
    return {}


@pytest.fixture(scope="module")
def console_settings(influxd: InfluxdProcess, mosquitto: MosquittoProcess,
                     tmp_path_factory: pytest.TempPathFactory,
                     console_overrides: dict[str, Any]) -> Iterator[ApiSettings]:
    influx = InfluxClient(url=influxd.url, database=f"c_{uuid.uuid4().hex[:12]}")
    influx.create_database()
    workdir = tmp_path_factory.mktemp("console")
    settings = ApiSettings(
        site_configs=ARIEGE, influx_url=influx.url, influx_db=influx.database,
        mqtt_host=mosquitto.host, mqtt_port=mosquitto.port, mqtt_username="api",
        mqtt_password=mosquitto.users["api"],
        api_database_url=f"sqlite:///{workdir / 'console.sqlite3'}",
        api_rollup_interval_s=0)
    yield settings.model_copy(update=console_overrides)
    influx.close()


@pytest.fixture(scope="module")
def console_server(console_settings: ApiSettings) -> Iterator[ConsoleServer]:
    app = create_app(console_settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="console-uvicorn")
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            pytest.fail("the console server did not start (its log is above) within "
                        f"{START_TIMEOUT_S} s")
        time.sleep(0.05)
    try:
        yield ConsoleServer(base_url=f"http://127.0.0.1:{port}", app=app,
                            settings=console_settings)
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT_S)
        sock.close()


@pytest.fixture(scope="module")
def console_app(console_server: ConsoleServer) -> FastAPI:
    return console_server.app


@pytest.fixture
def make_person(console_server: ConsoleServer) -> Callable[..., Person]:
    def make(login: str, password: str, role: TokenRole | str = TokenRole.OPERATOR,
             site: str | None = None, name: str | None = None) -> Person:
        with console_server.db() as db:
            row = people.find(db, login=login)
            if row is None:
                return people.create_person(db, login=login, name=name or login,
                                            role=TokenRole(role), site=site, password=password)
            row.role, row.site, row.disabled_at = TokenRole(role).value, site, None
            db.commit()
            people.reset_password(db, login=login, password=password)
            found = db.get(PersonRow, row.id)
            assert found is not None
            return people.person_of(found)

    return make


# Module-scoped, not session-scoped: Playwright's sync API keeps an asyncio loop running in
# the main thread while it lives, and every later test that calls asyncio.run() (the gateway's,
# the simulators') would fail with "cannot be called from a running event loop".
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (scripts/bootstrap installs Debian's chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.skip(f"the playwright package is missing: {exc}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, console_server: ConsoleServer) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800},
                                  base_url=console_server.base_url)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


def sign_in(page: Any, login: str, password: str) -> None:
    """Fill and send the sign-in form; returns once the next page has loaded."""
    page.goto("/connexion")
    page.fill("#login", login)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("form.login-form button[type=submit]")


@pytest.fixture
def login() -> Callable[[Any, str, str], None]:
    """`login(page, login, password)`: sign in through the form."""
    return sign_in
