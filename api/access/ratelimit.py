"""Failed sign-ins, counted per login and per client address over a sliding window.

Kept in the database rather than in memory: the count survives a restart (restarting the api
does not hand an attacker a fresh allowance) and is shared by every worker process of the api.
A sign-in is checked before its password is verified, and a refused attempt is not counted, so
a person locked out gets back in at a time the message can state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Integer, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from api.records.tables import Base, UtcDateTime


class LoginFailure(Base):
    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


@dataclass(frozen=True, slots=True)
class Policy:
    window: timedelta
    per_login: int
    per_address: int


def _unblocked_at(times: list[datetime], limit: int, window: timedelta) -> datetime | None:
    # Blocked while `limit` failures lie inside the window; it reopens when the oldest of the
    # last `limit` ones leaves it.
    if limit <= 0 or len(times) < limit:
        return None
    return sorted(times)[len(times) - limit] + window


def blocked_until(db: Session, *, login: str, address: str, policy: Policy,
                  now: datetime | None = None) -> datetime | None:
    """When this login may be tried again from this address, or None if it may now."""
    now = now or datetime.now(UTC)
    since = now - policy.window
    by_login = list(db.scalars(select(LoginFailure.at).where(
        LoginFailure.login == login, LoginFailure.at > since)))
    by_address = list(db.scalars(select(LoginFailure.at).where(
        LoginFailure.address == address, LoginFailure.at > since)))
    found = [moment for moment in (_unblocked_at(by_login, policy.per_login, policy.window),
                                   _unblocked_at(by_address, policy.per_address, policy.window))
             if moment is not None and moment > now]
    return max(found) if found else None


def record_failure(db: Session, *, login: str, address: str, policy: Policy,
                   now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    db.execute(delete(LoginFailure).where(LoginFailure.at <= now - policy.window))
    db.add(LoginFailure(login=login[:64], address=address[:64], at=now))
    db.commit()


def clear(db: Session, *, login: str) -> None:
    """A successful sign-in forgets the login's failures (not the address's: one good account
    must not reset the allowance of an address trying others)."""
    db.execute(delete(LoginFailure).where(LoginFailure.login == login))
    db.commit()
