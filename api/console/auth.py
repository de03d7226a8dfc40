"""Who is signed in to the console, and what they may do: the dependencies every page uses,
and the sign-in (`/connexion`) and sign-out (`/deconnexion`) pages.

How a page uses them::

    from api.console.auth import CsrfChecked, CurrentPerson, require_role

    @router.get("/registres/{site}")
    def records(request: Request, person: CurrentPerson, site: str) -> HTMLResponse:
        if not person.may_see(site):
            raise HTTPException(404)          # site B is not found for a person of site A
        ...

    @router.post("/registres/{site}", dependencies=[CsrfChecked])
    def create(..., person: CurrentPerson) -> Response: ...

    AdminOnly = Annotated[Person, Depends(require_role(TokenRole.ADMIN))]

- `CurrentPerson`: the signed-in `Person`; signed out, a page request is redirected (303) to
  `/connexion?next=<path>` and a fragment request (`X-Console-Fragment: 1`) gets 401. Sets
  `request.state.person` and `request.state.csrf_token`, which every template shows.
- `CsrfChecked`: the form field `csrf_token` (or header `X-CSRF-Token`) must be the session's
  token, else 403. Every POST carries it.
- `require_role(*roles)`: a dependency returning the person, 403 for other roles (admin passes).

Refusals are `ConsoleRefusal` (an `HTTPException` with a French or English message). On a
router made with `APIRouter(route_class=ConsoleRoute)`, or everywhere once the app has
`app.add_exception_handler(ConsoleRefusal, console_refusal_page)`, they are a page of the
console; elsewhere, FastAPI's JSON with the same status and message.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from api.access import people, ratelimit, sessions
from api.access.people import Person
from api.access.tokens import TokenRole
from api.console.i18n import translate
from api.console.language import local_path
from api.console.render import lang_of, page
from api.deps import Db, Settings
from api.settings import ApiSettings

SESSION_COOKIE = "dynamo_session"
# The sign-in form's CSRF token before any session exists: a random value in a cookie that the
# form must repeat (double submit). SameSite=Strict already keeps other sites' posts out.
LOGIN_CSRF_COOKIE = "dynamo_login_csrf"
FRAGMENT_HEADER = "X-Console-Fragment"

__all__ = ["ConsoleRefusal", "ConsoleRoute", "CsrfChecked", "CurrentPerson", "Person",
           "console_refusal_page", "require_role", "router"]


class ConsoleRefusal(HTTPException):
    """A refused console request: status and the message key (`common.<key>`) to show."""

    def __init__(self, request: Request, status: int, key: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, translate(key, lang_of(request)), headers=headers)
        self.key = key


def console_refusal_page(request: Request, exc: Exception) -> Response:
    """A refusal as a console page (install with `app.add_exception_handler`)."""
    assert isinstance(exc, ConsoleRefusal)
    if exc.status_code in (301, 302, 303, 307) or request.headers.get(FRAGMENT_HEADER) == "1":
        return Response(str(exc.detail), status_code=exc.status_code, headers=exc.headers,
                        media_type="text/plain; charset=utf-8")
    return page(request, "refusal.html", status=exc.status_code, message_key=exc.key,
                nav="")


class ConsoleRoute(APIRoute):
    """A route whose refusals (`ConsoleRefusal`) are console pages, whatever the app installs."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ConsoleRefusal as exc:
                return console_refusal_page(request, exc)

        return handle


router = APIRouter(route_class=ConsoleRoute)


def _now() -> datetime:
    return datetime.now(UTC)


def _signed_in(request: Request, db: Db, settings: Settings) -> Person | None:
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    active = sessions.resolve(db, secret=secret,
                              idle=timedelta(seconds=settings.console_idle_timeout_s))
    if active is None:
        return None
    request.state.person = active.person
    request.state.csrf_token = active.csrf_token
    return active.person


def _current_person(request: Request, person: Annotated[Person | None, Depends(_signed_in)]
                    ) -> Person:
    if person is not None:
        return person
    if request.headers.get(FRAGMENT_HEADER) == "1":
        raise ConsoleRefusal(request, 401, "auth.signed_out")
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise ConsoleRefusal(request, 303, "auth.signed_out",
                         headers={"Location": f"/connexion?next={quote(target, safe='')}"})


CurrentPerson = Annotated[Person, Depends(_current_person)]


async def _csrf_checked(request: Request, person: CurrentPerson) -> None:
    sent: Any = request.headers.get("X-CSRF-Token")
    if sent is None:
        sent = (await request.form()).get("csrf_token")
    expected = getattr(request.state, "csrf_token", "")
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(
            sent.encode(), expected.encode()):
        raise ConsoleRefusal(request, 403, "common.csrf_failed")


CsrfChecked = Depends(_csrf_checked)


def require_role(*roles: TokenRole | str) -> Callable[..., Person]:
    """A dependency that lets only `roles` (and admin) through: use it as
    `Annotated[Person, Depends(require_role(TokenRole.EVALUATOR))]` or in `dependencies=`."""
    allowed = {TokenRole(role) for role in roles} | {TokenRole.ADMIN}

    def check(request: Request, person: CurrentPerson) -> Person:
        if person.role not in allowed:
            raise ConsoleRefusal(request, 403, "common.forbidden")
        return person

    return check


# ---- sign-in and sign-out -------------------------------------------------------------------

def _secure(request: Request, settings: ApiSettings) -> bool:
    if settings.console_cookie_secure == "auto":
        return request.url.scheme == "https"
    return settings.console_cookie_secure == "always"


def _policy(settings: ApiSettings) -> ratelimit.Policy:
    return ratelimit.Policy(window=timedelta(seconds=settings.console_login_window_s),
                            per_login=settings.console_login_failures_per_login,
                            per_address=settings.console_login_failures_per_address)


def _login_form(request: Request, *, settings: ApiSettings, next_path: str, login: str = "",
                error: str | None = None, status: int = 200) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = page(request, "login.html", status=status, next_path=next_path, login=login,
                    error=error, login_csrf=token)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=_secure(request, settings), path="/connexion")
    return response


@router.get("/connexion")
def login_page(request: Request, settings: Settings,
               person: Annotated[Person | None, Depends(_signed_in)],
               next: str | None = None) -> Response:
    if person is not None:
        return RedirectResponse(local_path(next), status_code=303)
    return _login_form(request, settings=settings, next_path=local_path(next))


@router.post("/connexion")
def login_submit(request: Request, db: Db, settings: Settings,
                 login: Annotated[str, Form(max_length=200)] = "",
                 password: Annotated[str, Form(max_length=2000)] = "",
                 csrf_token: Annotated[str, Form(max_length=200)] = "",
                 next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
    next_path = local_path(next)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        return _login_form(request, settings=settings, next_path=next_path, login=login,
                           error=translate("common.csrf_failed", lang_of(request)), status=403)
    lang = lang_of(request)
    name = people.normal_login(login)[:64]
    address = request.client.host if request.client else "unknown"
    policy = _policy(settings)
    until = ratelimit.blocked_until(db, login=name, address=address, policy=policy)
    if until is not None:
        minutes = max(1, -(-int((until - _now()).total_seconds()) // 60))
        return _login_form(request, settings=settings, next_path=next_path, login=login,
                           error=translate("auth.too_many", lang, minutes=minutes), status=429)
    person = people.authenticate(db, login=name, password=password)
    if person is None:
        ratelimit.record_failure(db, login=name, address=address, policy=policy)
        return _login_form(request, settings=settings, next_path=next_path, login=login,
                           error=translate("auth.wrong_credentials", lang), status=401)
    ratelimit.clear(db, login=name)
    # Always a new session id at sign-in (never one the browser brought: no fixation), and the
    # one it brought, if any, ends.
    if previous := request.cookies.get(SESSION_COOKIE):
        sessions.end(db, secret=previous)
    idle = timedelta(seconds=settings.console_idle_timeout_s)
    sessions.purge(db, idle=idle)
    secret, _ = sessions.start(
        db, person=person, lifetime=timedelta(seconds=settings.console_session_lifetime_s))
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(SESSION_COOKIE, secret, httponly=True, samesite="strict",
                        secure=_secure(request, settings), path="/",
                        max_age=settings.console_session_lifetime_s)
    return response


@router.post("/deconnexion", dependencies=[CsrfChecked])
def logout(request: Request, db: Db, settings: Settings) -> Response:
    sessions.end(db, secret=request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/connexion", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=_secure(request, settings))
    return response
