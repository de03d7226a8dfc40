"""Api tokens: random secrets handed out once, stored only as their SHA-256.

A token has a role and, optionally, one site it is limited to. A high-entropy random token
needs no slow password hash: SHA-256 of 256 random bits cannot be reversed or guessed, and it
keeps the per-request check cheap.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.records.tables import ApiToken

PREFIX = "dyn_"


class TokenRole(StrEnum):
    OPERATOR = "operator"  # reads its site, enters production records
    EVALUATOR = "evaluator"  # reads and exports its site, manages baselines
    ADMIN = "admin"  # everything


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: int
    name: str
    role: TokenRole
    site: str | None  # None: every site

    def may_see(self, site: str) -> bool:
        return self.site is None or self.site == site


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: Session, *, role: TokenRole, site: str | None, name: str) -> str:
    """Store a new token and return it: the only time the secret is ever shown."""
    token = PREFIX + secrets.token_urlsafe(32)
    db.add(ApiToken(name=name, token_sha256=_digest(token), role=role.value, site=site,
                    created_at=datetime.now(UTC)))
    db.commit()
    return token


def authenticate(db: Session, token: str) -> Principal | None:
    """The principal behind a presented token, or None (unknown or revoked)."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    row = db.scalars(select(ApiToken).filter_by(token_sha256=_digest(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    return Principal(token_id=row.id, name=row.name, role=TokenRole(row.role), site=row.site)


def revoke_token(db: Session, *, token_id: int) -> bool:
    row = db.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = datetime.now(UTC)
    db.commit()
    return True


def list_tokens(db: Session) -> list[ApiToken]:
    return list(db.scalars(select(ApiToken).order_by(ApiToken.id)))
