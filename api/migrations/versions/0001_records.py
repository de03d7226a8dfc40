"""Production records, baselines and api tokens.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("site", sa.String(64), nullable=False, index=True),
        sa.Column("equipment", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime, nullable=True),
        sa.Column("notes", sa.Text, nullable=False),
        sa.UniqueConstraint("site", "equipment", "name"),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("site", sa.String(64), nullable=False, index=True),
        sa.Column("equipment", sa.String(64), nullable=False),
        sa.Column("campaign_id", sa.Integer,
                  sa.ForeignKey("campaigns.id", ondelete="SET NULL"), nullable=True),
        sa.Column("product", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False, index=True),
        sa.Column("ended_at", sa.DateTime, nullable=False),
        sa.Column("mass_in_kg", sa.Float, nullable=True),
        sa.Column("mass_out_kg", sa.Float, nullable=True),
        sa.Column("moisture_in_pct", sa.Float, nullable=True),
        sa.Column("moisture_out_pct", sa.Float, nullable=True),
        sa.Column("units", sa.Integer, nullable=True),
        sa.Column("notes", sa.Text, nullable=False),
    )
    op.create_table(
        "material_lots",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("site", sa.String(64), nullable=False, index=True),
        sa.Column("equipment", sa.String(64), nullable=False),
        sa.Column("material", sa.String(64), nullable=False),
        sa.Column("supplier", sa.String(200), nullable=False),
        sa.Column("mass_kg", sa.Float, nullable=False),
        sa.Column("factor_id", sa.String(80), nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "refrigerant_top_ups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("site", sa.String(64), nullable=False, index=True),
        sa.Column("equipment", sa.String(64), nullable=False),
        sa.Column("refrigerant", sa.String(20), nullable=False),
        sa.Column("mass_kg", sa.Float, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False, index=True),
        sa.Column("notes", sa.Text, nullable=False),
    )
    op.create_table(
        "baselines",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(80), nullable=False, unique=True),
        sa.Column("equipment_kind", sa.String(20), nullable=False),
        sa.Column("output", sa.String(40), nullable=False),
        sa.Column("activity_per_output", sa.Float, nullable=False),
        sa.Column("activity_unit", sa.String(40), nullable=False),
        sa.Column("factor_id", sa.String(80), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("site", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("revoked_at", sa.DateTime, nullable=True),
    )


def downgrade() -> None:
    for table in ("api_tokens", "baselines", "refrigerant_top_ups", "material_lots", "batches",
                  "campaigns"):
        op.drop_table(table)
