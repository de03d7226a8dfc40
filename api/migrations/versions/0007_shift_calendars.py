"""Shift calendars set by an admin, every version kept (api/records/calendars.py): the planned
production time of OEE availability.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shift_calendars",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("site", sa.String(64), nullable=False, index=True),
        sa.Column("equipment", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("calendar", sa.JSON, nullable=True),
        sa.Column("set_by", sa.String(200), nullable=False),
        sa.Column("set_at", sa.DateTime, nullable=False),
        sa.Column("via", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.UniqueConstraint("site", "equipment", "version"),
    )


def downgrade() -> None:
    op.drop_table("shift_calendars")
