"""The admins' page of people (`/utilisateurs`): list, create, reset a password, disable."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.access import people
from api.access.people import Person, PersonError
from api.access.tokens import TokenRole
from api.console.auth import ConsoleRoute, CsrfChecked, require_role
from api.console.i18n import translate
from api.console.render import lang_of, page
from api.deps import Db, Registry
from api.sites import SiteRegistry

router = APIRouter(route_class=ConsoleRoute)
Admin = Annotated[Person, Depends(require_role(TokenRole.ADMIN))]
LoginPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
ROLES = tuple(role.value for role in TokenRole)
# What the page says after a change (`?fait=…`), so a reload does not post again.
DONE = {"created": "users.created", "reset": "users.reset_done", "disabled": "users.disabled_done"}


def _page(request: Request, db: Db, registry: SiteRegistry, *, status: int = 200,
          form: dict[str, str] | None = None, errors: dict[str, str] | None = None,
          row_errors: dict[str, str] | None = None, done: str | None = None) -> HTMLResponse:
    return page(request, "users.html", status=status, nav="users",
                people=people.list_people(db), roles=ROLES, sites=registry.sites(),
                form=form or {"login": "", "name": "", "role": "operator", "site": ""},
                errors=errors or {}, row_errors=row_errors or {},
                done=DONE.get(done or ""), min_length=people.MIN_PASSWORD_LENGTH)


def _message(request: Request, error: PersonError) -> str:
    return translate(f"users.{error.key}", lang_of(request), **error.values)


@router.get("/utilisateurs")
def users_page(request: Request, db: Db, registry: Registry, admin: Admin,
               fait: str | None = None) -> HTMLResponse:
    return _page(request, db, registry, done=fait)


@router.post("/utilisateurs", dependencies=[CsrfChecked])
def create(request: Request, db: Db, registry: Registry, admin: Admin,
           login: Annotated[str, Form(max_length=200)] = "",
           name: Annotated[str, Form(max_length=200)] = "",
           role: Annotated[str, Form(max_length=20)] = "operator",
           site: Annotated[str, Form(max_length=64)] = "",
           password: Annotated[str, Form(max_length=2000)] = "") -> Response:
    form = {"login": login, "name": name, "role": role, "site": site}
    errors: dict[str, str] = {}
    if role not in ROLES:
        errors["role"] = translate("users.role_invalid", lang_of(request))
    if site and site not in registry.sites():
        errors["site"] = translate("users.site_invalid", lang_of(request))
    if not errors:
        try:
            people.create_person(db, login=login, name=name, role=TokenRole(role),
                                 site=site or None, password=password)
        except PersonError as exc:
            errors[exc.field] = _message(request, exc)
    if errors:
        return _page(request, db, registry, status=422, form=form, errors=errors)
    return RedirectResponse("/utilisateurs?fait=created", status_code=303)


@router.post("/utilisateurs/{login}/mot-de-passe", dependencies=[CsrfChecked])
def reset(request: Request, db: Db, registry: Registry, admin: Admin, login: LoginPath,
          password: Annotated[str, Form(max_length=2000)] = "") -> Response:
    try:
        people.reset_password(db, login=login, password=password)
    except PersonError as exc:
        return _page(request, db, registry, status=422,
                     row_errors={login: _message(request, exc)})
    return RedirectResponse("/utilisateurs?fait=reset", status_code=303)


@router.post("/utilisateurs/{login}/desactiver", dependencies=[CsrfChecked])
def disable(request: Request, db: Db, registry: Registry, admin: Admin,
            login: LoginPath) -> Response:
    if login == admin.login:
        return _page(request, db, registry, status=422, row_errors={
            login: translate("users.cannot_disable_self", lang_of(request))})
    try:
        people.disable(db, login=login)
    except PersonError as exc:
        return _page(request, db, registry, status=422,
                     row_errors={login: _message(request, exc)})
    return RedirectResponse("/utilisateurs?fait=disabled", status_code=303)
