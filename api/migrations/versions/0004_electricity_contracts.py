"""Electricity supply contracts per site, for the market-based scope 2
(api/records/contracts.py).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "electricity_contracts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("site", sa.String(64), nullable=False, index=True),
        sa.Column("supplier", sa.String(200), nullable=False),
        sa.Column("product", sa.String(200), nullable=False),
        sa.Column("factor_kg_per_kwh", sa.Float, nullable=False),
        sa.Column("factor_source", sa.Text, nullable=False),
        sa.Column("guarantees_of_origin", sa.Boolean, nullable=False),
        sa.Column("certificate_ref", sa.String(200), nullable=True),
        sa.Column("valid_from", sa.DateTime, nullable=False, index=True),
        sa.Column("valid_to", sa.DateTime, nullable=True),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=True),
        sa.Column("updated_by", sa.String(200), nullable=True),
        sa.Column("voided_at", sa.DateTime, nullable=True),
        sa.Column("voided_by", sa.String(200), nullable=True),
        sa.Column("void_reason", sa.Text, nullable=True),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
    )
    op.create_index("ix_electricity_contracts_idempotency", "electricity_contracts",
                    ["site", "idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_table("electricity_contracts")
