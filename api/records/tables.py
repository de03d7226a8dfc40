"""Production records (batches, campaigns, material lots, refrigerant top-ups), baselines and
api tokens: the relational tables, as SQLAlchemy 2.x mapped classes.

Times are stored in UTC; SQLite keeps no zone, so `UtcDateTime` strips it on the way in and
puts it back on the way out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: records keep time zones")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("site", "equipment", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    equipment: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="")


class Batch(Base):
    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    equipment: Mapped[str] = mapped_column(String(64))
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL"), nullable=True)
    product: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    ended_at: Mapped[datetime] = mapped_column(UtcDateTime)
    mass_in_kg: Mapped[float | None] = mapped_column(Float, nullable=True)
    mass_out_kg: Mapped[float | None] = mapped_column(Float, nullable=True)
    moisture_in_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    moisture_out_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    units: Mapped[int | None] = mapped_column(Integer, nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="")


class MaterialLot(Base):
    __tablename__ = "material_lots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    equipment: Mapped[str] = mapped_column(String(64))
    material: Mapped[str] = mapped_column(String(64))
    supplier: Mapped[str] = mapped_column(String(200), default="")
    mass_kg: Mapped[float] = mapped_column(Float)
    factor_id: Mapped[str] = mapped_column(String(80))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RefrigerantTopUp(Base):
    __tablename__ = "refrigerant_top_ups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    equipment: Mapped[str] = mapped_column(String(64))
    refrigerant: Mapped[str] = mapped_column(String(20))
    mass_kg: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    notes: Mapped[str] = mapped_column(Text, default="")


class Baseline(Base):
    """A documented reference scenario: activity per unit of output × an emission factor."""

    __tablename__ = "baselines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    equipment_kind: Mapped[str] = mapped_column(String(20))
    output: Mapped[str] = mapped_column(String(40))
    activity_per_output: Mapped[float] = mapped_column(Float)
    activity_unit: Mapped[str] = mapped_column(String(40))
    factor_id: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    site: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
