"""People who sign in to the console: a login, a role, an optional site and a password.

Passwords are hashed with argon2id (argon2-cffi's `PasswordHasher`, its RFC 9106 defaults); a
hash made with older parameters is replaced on the next successful sign-in. The roles are the
api tokens' roles (`TokenRole`), so a person and a token of the same role may do the same things.
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Integer, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from api.access.tokens import TokenRole
from api.records.tables import Base, UtcDateTime

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # hashing megabytes of "password" is a denial of service, not a login
LOGIN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
SITE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")

HASHER = PasswordHasher()
# Verified against when the login does not exist, so that an unknown login costs the same time
# as a wrong password and the answer's delay tells nothing.
_DUMMY_HASH = HASHER.hash("not a password of anybody")


class PersonRow(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    site: Mapped[str | None] = mapped_column(String(64), nullable=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    password_changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


@dataclass(frozen=True, slots=True)
class Person:
    """Someone signed in: who, with which role, limited to which site (None: every site)."""

    id: int
    login: str
    name: str
    role: TokenRole
    site: str | None

    def may_see(self, site: str) -> bool:
        return self.site is None or self.site == site

    @property
    def actor(self) -> str:
        """How the audit trail names this person."""
        return f"user:{self.login}"


class PersonError(ValueError):
    """A refused change to a person: the form field it concerns and the message key
    (`users.<key>` in api/console/messages/users.yaml), translated where it is shown."""

    def __init__(self, field: str, key: str, **values: object) -> None:
        super().__init__(f"{field}: {key}")
        self.field = field
        self.key = key
        self.values = values


def person_of(row: PersonRow) -> Person:
    return Person(id=row.id, login=row.login, name=row.name, role=TokenRole(row.role),
                  site=row.site)


def normal_login(login: str) -> str:
    return login.strip().lower()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PersonError("password", "password_too_short", minimum=MIN_PASSWORD_LENGTH)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PersonError("password", "password_too_long", maximum=MAX_PASSWORD_LENGTH)


def find(db: Session, *, login: str) -> PersonRow | None:
    return db.scalars(select(PersonRow).filter_by(login=normal_login(login))).first()


def create_person(db: Session, *, login: str, name: str, role: TokenRole, site: str | None,
                  password: str) -> Person:
    """Store a new person; `PersonError` names the field that is wrong."""
    login = normal_login(login)
    if not LOGIN.fullmatch(login):
        raise PersonError("login", "login_invalid")
    if not name.strip():
        raise PersonError("name", "name_required")
    if site is not None and not SITE.fullmatch(site):
        raise PersonError("site", "site_invalid")
    _check_password(password)
    if find(db, login=login) is not None:
        raise PersonError("login", "login_taken")
    now = datetime.now(UTC)
    row = PersonRow(login=login, name=name.strip(), role=TokenRole(role).value, site=site,
                    password_hash=HASHER.hash(password), created_at=now,
                    password_changed_at=now, disabled_at=None)
    db.add(row)
    try:
        db.commit()
    except IntegrityError:  # the same login created at the same moment elsewhere
        db.rollback()
        raise PersonError("login", "login_taken") from None
    return person_of(row)


def list_people(db: Session) -> list[PersonRow]:
    return list(db.scalars(select(PersonRow).order_by(PersonRow.login)))


def _row(db: Session, login: str) -> PersonRow:
    row = find(db, login=login)
    if row is None:
        raise PersonError("login", "unknown_login")
    return row


def reset_password(db: Session, *, login: str, password: str) -> None:
    """A new password; every session the person had ends (see `api.access.sessions`)."""
    _check_password(password)
    row = _row(db, login)
    row.password_hash = HASHER.hash(password)
    row.password_changed_at = datetime.now(UTC)
    db.commit()
    _end_sessions(db, row.id)


def disable(db: Session, *, login: str) -> None:
    """No more sign-ins, and every session ends. The row stays: the audit trail names it."""
    row = _row(db, login)
    if row.disabled_at is None:
        row.disabled_at = datetime.now(UTC)
        db.commit()
    _end_sessions(db, row.id)


def _end_sessions(db: Session, person_id: int) -> None:
    # Imported here: sessions refer to people, not the other way round. The session check also
    # refuses a session of a disabled person or one older than the password, so this delete is
    # tidiness, not the only guard.
    from api.access.sessions import end_all

    end_all(db, person_id=person_id)


def authenticate(db: Session, *, login: str, password: str) -> Person | None:
    """The person if `password` is theirs and they are not disabled, else None."""
    row = find(db, login=login)
    if row is None or len(password) > MAX_PASSWORD_LENGTH:
        with suppress(VerificationError):
            HASHER.verify(_DUMMY_HASH, password[:MAX_PASSWORD_LENGTH])
        return None
    try:
        HASHER.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if row.disabled_at is not None:
        return None
    if HASHER.check_needs_rehash(row.password_hash):
        row.password_hash = HASHER.hash(password)
        db.commit()
    return person_of(row)
