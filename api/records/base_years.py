"""The base-year table: per site and equipment, one calendar year and its figures frozen when an
admin set it (ISO 14064-1:2018 §6.4). What the figures are and how a recalculation is compared
with them is `api.accounting.base_year`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from api.records.tables import Base, UtcDateTime


class BaseYear(Base):
    """The base year of one equipment, and its figures frozen when it was set."""

    __tablename__ = "base_years"
    __table_args__ = (UniqueConstraint("site", "equipment"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    equipment: Mapped[str] = mapped_column(String(64))
    year: Mapped[int] = mapped_column(Integer)
    set_by: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(UtcDateTime)
    frozen: Mapped[dict[str, Any]] = mapped_column(JSON)
    recalculations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


def find(db: Session, *, site: str, equipment: str) -> BaseYear | None:
    return db.scalars(select(BaseYear).filter_by(site=site, equipment=equipment)).first()
