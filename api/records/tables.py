"""Production records (batches, campaigns, material lots, refrigerant top-ups, manual activity
data), baselines, their audit trail and api tokens: the relational tables, as SQLAlchemy 2.x
mapped classes.

Times are stored in UTC; SQLite keeps no zone, so `UtcDateTime` strips it on the way in and
puts it back on the way out. Records are written through `api.records.service` only: it keeps
their version, their void and their audit trail.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
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


def _now() -> datetime:
    return datetime.now(UTC)


class Tracked:
    """What every record carries besides its content: its version (optimistic locking: an
    edit names the version it started from), who made and last changed it, its void, and the
    idempotency key of the request that created it (unique per table and site)."""

    version: Mapped[int] = mapped_column(Integer, default=1)
    # Rows written outside the service (a test fixture, a seed script) still get a stamp.
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now)
    created_by: Mapped[str] = mapped_column(String(200), default="unrecorded")
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    updated_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    voided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    voided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    void_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        # The ORM bumps `version` on every UPDATE and matches it in the WHERE clause: two
        # concurrent edits of one version cannot both win (StaleDataError for the second).
        return {"version_id_col": cls.version}


class Record(Tracked, Base):
    """A stored record of one of the kinds of `api.records.kinds`."""

    __abstract__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True)


class Campaign(Record):
    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("site", "equipment", "name"),
                      Index("ix_campaigns_idempotency", "site", "idempotency_key", unique=True))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    equipment: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="")


class Batch(Record):
    __tablename__ = "batches"
    __table_args__ = (Index("ix_batches_idempotency", "site", "idempotency_key", unique=True),)

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
    # The packaging material lot a run drew from (no foreign key: SQLite cannot add one to an
    # existing table without rebuilding it; the service checks it belongs to the equipment).
    material_lot_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="")


class MaterialLot(Record):
    __tablename__ = "material_lots"
    __table_args__ = (Index("ix_material_lots_idempotency", "site", "idempotency_key",
                            unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    equipment: Mapped[str] = mapped_column(String(64))
    material: Mapped[str] = mapped_column(String(64))
    supplier: Mapped[str] = mapped_column(String(200), default="")
    mass_kg: Mapped[float] = mapped_column(Float)
    factor_id: Mapped[str] = mapped_column(String(80))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RefrigerantTopUp(Record):
    """One line of the F-gas logbook: fluid, mass refilled, intervention and technician."""

    __tablename__ = "refrigerant_top_ups"
    __table_args__ = (Index("ix_refrigerant_top_ups_idempotency", "site", "idempotency_key",
                            unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    equipment: Mapped[str] = mapped_column(String(64))
    refrigerant: Mapped[str] = mapped_column(String(20))
    mass_kg: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    intervention_ref: Mapped[str] = mapped_column(String(100), default="")
    technician: Mapped[str] = mapped_column(String(200), default="")
    notes: Mapped[str] = mapped_column(Text, default="")


class ManualActivity(Record):
    """Activity data entered by hand: a fuel delivery (quantity, delivery note) or the index of
    a meter that is not connected (meter, index). Columns of the other kind stay empty."""

    __tablename__ = "manual_activities"
    __table_args__ = (Index("ix_manual_activities_idempotency", "site", "idempotency_key",
                            unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    equipment: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))  # fuel_delivery | meter_reading
    carrier: Mapped[str] = mapped_column(String(40))
    unit: Mapped[str] = mapped_column(String(20))
    quantity: Mapped[float | None] = mapped_column(Float, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    delivery_note: Mapped[str | None] = mapped_column(String(100), nullable=True)
    meter: Mapped[str | None] = mapped_column(String(100), nullable=True)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    index_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="")


class RecordAudit(Base):
    """One change of one record: kept when the record is voided, and when it is purged."""

    __tablename__ = "record_audit"
    __table_args__ = (Index("ix_record_audit_record", "kind", "record_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))  # the record kind's name, e.g. batches
    record_id: Mapped[int] = mapped_column(Integer)
    site: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    equipment: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(10))  # create | edit | void | purge
    actor: Mapped[str] = mapped_column(String(200))  # token:<name> | user:<login>
    via: Mapped[str] = mapped_column(String(10))  # api | console | cli
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")


class Baseline(Record):
    """A documented reference scenario: activity per unit of output × an emission factor."""

    __tablename__ = "baselines"
    __table_args__ = (Index("ix_baselines_idempotency", "idempotency_key", unique=True),)

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
