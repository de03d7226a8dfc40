"""Records you can trust: version, void and idempotency key on every record table, the audit
trail (`record_audit`), manual activity data (`manual_activities`), the F-gas logbook's
intervention and technician, and the material lot of a packaging run.

Columns are only added (no table is rebuilt: on SQLite a rebuild of `campaigns` would fire the
`ON DELETE SET NULL` of the batches pointing at it). Rows that exist before this migration get
version 1 and a creation stamped with the migration's time and `before-audit` as author: their
real history was not kept.

Revision ID: 0002
Revises: 0001
"""

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_RECORDS = ("campaigns", "batches", "material_lots", "refrigerant_top_ups", "baselines")
_PER_SITE = ("campaigns", "batches", "material_lots", "refrigerant_top_ups",
             "manual_activities")


def _tracked(stamp: str) -> list[sa.Column[Any]]:
    # A constant server default (SQLite refuses to add a NOT NULL column without one, and a
    # non-constant one such as CURRENT_TIMESTAMP): it only fills the rows that already exist,
    # the service always writes both columns.
    return [
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime, nullable=False, server_default=stamp),
        sa.Column("created_by", sa.String(200), nullable=False, server_default="before-audit"),
        sa.Column("updated_at", sa.DateTime, nullable=True),
        sa.Column("updated_by", sa.String(200), nullable=True),
        sa.Column("voided_at", sa.DateTime, nullable=True),
        sa.Column("voided_by", sa.String(200), nullable=True),
        sa.Column("void_reason", sa.Text, nullable=True),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
    ]


def upgrade() -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    for table in _RECORDS:
        for column in _tracked(stamp):
            op.add_column(table, column)
    op.add_column("batches", sa.Column("material_lot_id", sa.Integer, nullable=True))
    op.add_column("refrigerant_top_ups", sa.Column("intervention_ref", sa.String(100),
                                                   nullable=False, server_default=""))
    op.add_column("refrigerant_top_ups", sa.Column("technician", sa.String(200),
                                                   nullable=False, server_default=""))
    op.create_table(
        "manual_activities",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("site", sa.String(64), nullable=False, index=True),
        sa.Column("equipment", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("carrier", sa.String(40), nullable=False),
        sa.Column("unit", sa.String(20), nullable=False),
        sa.Column("quantity", sa.Float, nullable=True),
        sa.Column("delivered_at", sa.DateTime, nullable=True),
        sa.Column("delivery_note", sa.String(100), nullable=True),
        sa.Column("meter", sa.String(100), nullable=True),
        sa.Column("read_at", sa.DateTime, nullable=True),
        sa.Column("index_value", sa.Float, nullable=True),
        sa.Column("notes", sa.Text, nullable=False),
        *_tracked(stamp),
    )
    # NULL keys never collide (SQLite and PostgreSQL alike): records without a key are free.
    for table in _PER_SITE:
        op.create_index(f"ix_{table}_idempotency", table, ["site", "idempotency_key"],
                        unique=True)
    op.create_index("ix_baselines_idempotency", "baselines", ["idempotency_key"], unique=True)
    op.create_table(
        "record_audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("record_id", sa.Integer, nullable=False),
        sa.Column("site", sa.String(64), nullable=True, index=True),
        sa.Column("equipment", sa.String(64), nullable=True),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("via", sa.String(10), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("before", sa.JSON, nullable=True),
        sa.Column("after", sa.JSON, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_record_audit_record", "record_audit", ["kind", "record_id"])


def downgrade() -> None:
    op.drop_table("record_audit")
    op.drop_index("ix_baselines_idempotency", "baselines")
    for table in _PER_SITE[:-1]:
        op.drop_index(f"ix_{table}_idempotency", table)
    op.drop_table("manual_activities")
    with op.batch_alter_table("refrigerant_top_ups") as batch:
        batch.drop_column("technician")
        batch.drop_column("intervention_ref")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("material_lot_id")
    for table in _RECORDS:
        with op.batch_alter_table(table) as batch:
            for column in reversed(_tracked("")):
                batch.drop_column(column.name)
