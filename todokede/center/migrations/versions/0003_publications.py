"""Published months become numbered revisions with a frozen snapshot: ``publications`` and
``publication_files`` replace ``published_months``. A month published before keeps its date
and publisher as revision 1; its snapshot is taken the first time it is shown.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "publications",
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("revision", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("published_at", TS, nullable=False),
        sa.Column("published_by", sa.String(100), nullable=False),
        sa.Column("digest", sa.String(64), nullable=True),
        sa.Column("snapshot", sa.Text(), nullable=True),
        sa.Column("withdrawn_at", TS, nullable=True),
        sa.Column("withdrawn_by", sa.String(100), nullable=True),
        sa.Column("withdrawn_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("month", "revision", name="pk_publications"),
    )
    op.create_table(
        "publication_files",
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("revision", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["month", "revision"],
            ["publications.month", "publications.revision"],
            name="fk_publication_files_month_publications",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("month", "revision", "name", name="pk_publication_files"),
    )
    op.execute(
        "INSERT INTO publications (month, revision, published_at, published_by) "
        "SELECT month, 1, published_at, published_by FROM published_months"
    )
    op.drop_table("published_months")


def downgrade() -> None:
    op.create_table(
        "published_months",
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("published_at", TS, nullable=False),
        sa.Column("published_by", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("month", name="pk_published_months"),
    )
    op.execute(
        "INSERT INTO published_months (month, published_at, published_by) "
        "SELECT month, MIN(published_at), MIN(published_by) FROM publications "
        "WHERE withdrawn_at IS NULL GROUP BY month"
    )
    op.drop_table("publication_files")
    op.drop_table("publications")
