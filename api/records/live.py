"""Which records count: a voided record stays stored (and in its history) but no figure,
rollup, report or export reads it. Every such reader selects through `live`."""

from __future__ import annotations

from typing import TypeGuard, TypeVar

from sqlalchemy import Select, select

from api.records.tables import Record

T = TypeVar("T", bound=Record)


def live(model: type[T]) -> Select[T]:
    """`select(model)` of the records that are not voided."""
    return select(model).where(model.voided_at.is_(None))


def is_live(row: T | None) -> TypeGuard[T]:
    """A record that exists and is not voided (for readers that fetch one by id)."""
    return row is not None and row.voided_at is None
