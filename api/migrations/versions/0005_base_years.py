"""Base years: per site and equipment, the year's figures frozen when set, and the
recalculations recorded since (ISO 14064-1:2018 §6.4).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "base_years",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("site", sa.String(64), nullable=False, index=True),
        sa.Column("equipment", sa.String(64), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("set_by", sa.String(200), nullable=False),
        sa.Column("set_at", sa.DateTime, nullable=False),
        sa.Column("frozen", sa.JSON, nullable=False),
        sa.Column("recalculations", sa.JSON, nullable=False),
        sa.UniqueConstraint("site", "equipment"),
    )


def downgrade() -> None:
    op.drop_table("base_years")
