"""Console sessions, kept server-side: the cookie holds a random id, the database its SHA-256.

Why rows rather than a signed cookie: signing-out, disabling a person and resetting a password
must end sessions at once, on the server. A signed cookie stays valid until it expires unless
the server keeps a list of revoked ones, i.e. a table anyway. A row also carries the idle
deadline and the CSRF token, and needs no signing key to configure, rotate or leak. The id is
256 random bits: like an api token, it cannot be guessed, and storing only its SHA-256 means a
copy of the database opens no session.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ForeignKey, Integer, String, delete
from sqlalchemy.orm import Mapped, Session, mapped_column

from api.access.people import Person, PersonRow, person_of
from api.records.tables import Base, UtcDateTime


class ConsoleSession(Base):
    __tablename__ = "console_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("people.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


@dataclass(frozen=True, slots=True)
class Active:
    """A live session: who, and the token their forms must carry."""

    person: Person
    csrf_token: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def start(db: Session, *, person: Person, lifetime: timedelta,
          now: datetime | None = None) -> tuple[str, Active]:
    """A new session for `person`: the cookie's secret (shown once) and the session."""
    now = now or datetime.now(UTC)
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    db.add(ConsoleSession(id_sha256=_digest(secret), person_id=person.id, csrf_token=csrf,
                          created_at=now, last_seen_at=now, expires_at=now + lifetime))
    db.commit()
    return secret, Active(person=person, csrf_token=csrf)


def resolve(db: Session, *, secret: str, idle: timedelta,
            now: datetime | None = None) -> Active | None:
    """The session behind a cookie's `secret`, its idle deadline pushed back; None when it is
    unknown, idle too long, past its lifetime, older than the password, or its person disabled
    (such a row is deleted)."""
    if not secret or len(secret) > 200:
        return None
    now = now or datetime.now(UTC)
    row = db.get(ConsoleSession, _digest(secret))
    if row is None:
        return None
    person = db.get(PersonRow, row.person_id)
    if (person is None or person.disabled_at is not None or now >= row.expires_at
            or now - row.last_seen_at >= idle or row.created_at < person.password_changed_at):
        db.delete(row)
        db.commit()
        return None
    # One write per request would make every page a database write; a write when a tenth of
    # the idle time (at most a minute) has gone by keeps the deadline within that of the truth.
    if now - row.last_seen_at >= min(idle / 10, timedelta(minutes=1)):
        row.last_seen_at = now
        db.commit()
    return Active(person=person_of(person), csrf_token=row.csrf_token)


def end(db: Session, *, secret: str) -> None:
    """Sign-out: the session's row is deleted, so the cookie opens nothing any more."""
    db.execute(delete(ConsoleSession).where(ConsoleSession.id_sha256 == _digest(secret)))
    db.commit()


def end_all(db: Session, *, person_id: int) -> int:
    """End every session of a person; how many there were."""
    result = db.execute(delete(ConsoleSession).where(ConsoleSession.person_id == person_id))
    db.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def purge(db: Session, *, idle: timedelta, now: datetime | None = None) -> None:
    """Delete sessions past their lifetime or idle deadline (called at sign-in)."""
    now = now or datetime.now(UTC)
    db.execute(delete(ConsoleSession).where(
        (ConsoleSession.expires_at <= now) | (ConsoleSession.last_seen_at <= now - idle)))
    db.commit()
