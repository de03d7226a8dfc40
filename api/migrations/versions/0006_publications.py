"""Published reports: a frozen report (PDF, XLSX and the manifest of every input and figure)
that is never updated; a correction is a new row pointing at the one it supersedes.

The rendered bytes live in the row, next to their sha256: the publication, its manifest and
its documents are then written in one transaction and saved by the same database backup, and
nothing outside the database can drift from the hashes the manifest states.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "publications",
        # Chosen before the report is rendered (the PDF's footer carries it): site, period
        # start and a random part, e.g. ariege-20260608-4f1a2b.
        sa.Column("id", sa.String(120), primary_key=True),
        sa.Column("site", sa.String(64), nullable=False, index=True),
        sa.Column("period_start", sa.DateTime, nullable=False),
        sa.Column("period_end", sa.DateTime, nullable=False),
        sa.Column("period_label", sa.String(200), nullable=False),
        sa.Column("published_by", sa.String(200), nullable=False),
        sa.Column("published_at", sa.DateTime, nullable=False),
        sa.Column("lang", sa.String(2), nullable=False),
        sa.Column("supersedes", sa.String(120),
                  sa.ForeignKey("publications.id", ondelete="RESTRICT"), nullable=True),
        sa.Column("code_version", sa.String(120), nullable=False),
        sa.Column("manifest", sa.JSON, nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("pdf", sa.LargeBinary, nullable=False),
        sa.Column("pdf_sha256", sa.String(64), nullable=False),
        sa.Column("xlsx", sa.LargeBinary, nullable=False),
        sa.Column("xlsx_sha256", sa.String(64), nullable=False),
    )
    # A publication is corrected at most once: the chain stays a line, never a tree.
    op.create_index("ix_publications_supersedes", "publications", ["supersedes"], unique=True)
    # The records a publication rests on, one row each, so that a purge can be refused with
    # an indexed look-up rather than a search through every manifest.
    op.create_table(
        "publication_records",
        sa.Column("publication_id", sa.String(120),
                  sa.ForeignKey("publications.id", ondelete="RESTRICT"), primary_key=True),
        sa.Column("kind", sa.String(40), primary_key=True),
        sa.Column("record_id", sa.Integer, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_publication_records_record", "publication_records",
                    ["kind", "record_id"])


def downgrade() -> None:
    op.drop_index("ix_publication_records_record", "publication_records")
    op.drop_table("publication_records")
    op.drop_index("ix_publications_supersedes", "publications")
    op.drop_table("publications")
