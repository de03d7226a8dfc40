"""`dynamo users …`: the people who sign in to the console (api database, DYNAMO_API_DATABASE_URL).

Passwords are read from a hidden prompt or, for scripts, from standard input
(`--password-stdin`); never from the command line, where `ps` and shell history would keep them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

ROLES = ["operator", "evaluator", "admin"]


@click.group()
def users() -> None:
    """People who sign in to the console (docs/console-admin.md)."""


@contextmanager
def _db() -> Iterator[Session]:
    from api.database import make_engine, migrate, sessions
    from api.settings import ApiSettings

    engine = make_engine(ApiSettings().api_database_url)
    try:
        migrate(engine)
        with sessions(engine)() as db:
            yield db
    finally:
        engine.dispose()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        # One line: the password, without its line end.
        return sys.stdin.readline().rstrip("\r\n")
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@contextmanager
def _refusals() -> Iterator[None]:
    """A refused change as a one-line error (the console's English message), exit status 1."""
    from api.access.people import PersonError
    from api.console.i18n import translate

    try:
        yield
    except PersonError as exc:
        raise click.ClickException(
            f"{exc.field}: {translate(f'users.{exc.key}', 'en', **exc.values)}") from None


@users.command("create")
@click.argument("login")
@click.option("--name", required=True, help="the person's full name, shown in the console")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--site", default=None, help="limit the person to one site (default: every site)")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def create(login: str, name: str, role: str, site: str | None, password_stdin: bool) -> None:
    """Create a person who signs in as LOGIN."""
    from api.access.people import create_person
    from api.access.tokens import TokenRole

    password = _password(password_stdin)
    with _refusals(), _db() as db:
        person = create_person(db, login=login, name=name, role=TokenRole(role), site=site,
                               password=password)
    click.echo(f"created {person.login} ({person.role.value}, {person.site or 'every site'})")


@users.command("list")
def list_() -> None:
    """Every person: login, role, site, name, created, disabled."""
    from api.access.people import list_people

    with _db() as db:
        for row in list_people(db):
            disabled = row.disabled_at.isoformat() if row.disabled_at else "-"
            click.echo(f"{row.login}\t{row.role}\t{row.site or '*'}\t{row.name}\t"
                       f"{row.created_at.isoformat()}\t{disabled}")


@users.command("reset-password")
@click.argument("login")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def reset_password(login: str, password_stdin: bool) -> None:
    """Give LOGIN a new password; their open sessions end."""
    from api.access.people import reset_password as reset

    password = _password(password_stdin)
    with _refusals(), _db() as db:
        reset(db, login=login, password=password)
    click.echo(f"new password for {login.strip().lower()}; its sessions are closed")


@users.command("disable")
@click.argument("login")
def disable(login: str) -> None:
    """Stop LOGIN from signing in; their open sessions end."""
    from api.access.people import disable as disable_person

    with _refusals(), _db() as db:
        disable_person(db, login=login)
    click.echo(f"disabled {login.strip().lower()}; its sessions are closed")
