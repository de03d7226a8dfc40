"""Electricity supply contracts per site: what the market-based scope 2 multiplies by.

A contract names its supplier, product and the supplier's disclosed emission factor
(kgCO2e/kWh, with where it was disclosed), whether guarantees of origin back it (and their
certificate reference), and when it applies (`valid_from` inclusive, `valid_to` exclusive,
open-ended when empty). An edit bumps `version` (optimistic locking, as every record); a
deletion voids it: a voided contract no longer counts, but stays readable. Written through
`api.records.service` (kind `electricity_contracts`, owned by the site), which audits it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from api.records.tables import Record, UtcDateTime


class ElectricityContract(Record):
    __tablename__ = "electricity_contracts"
    __table_args__ = (Index("ix_electricity_contracts_idempotency", "site", "idempotency_key",
                            unique=True),)

    site: Mapped[str] = mapped_column(String(64), index=True)
    supplier: Mapped[str] = mapped_column(String(200))
    product: Mapped[str] = mapped_column(String(200))
    factor_kg_per_kwh: Mapped[float] = mapped_column(Float)
    factor_source: Mapped[str] = mapped_column(Text)
    guarantees_of_origin: Mapped[bool] = mapped_column(Boolean, default=False)
    certificate_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    valid_to: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="")
