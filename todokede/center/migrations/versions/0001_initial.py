"""The center's first schema: users, tokens, incidents, reports, report_terms, audit,
published_months.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_users"),
    )
    op.create_table(
        "tokens",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("user_name", sa.String(100), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["user_name"], ["users.name"], name="fk_tokens_user_name_users"),
        sa.PrimaryKeyConstraint("digest", name="pk_tokens"),
    )
    op.create_index("ix_tokens_user_name", "tokens", ["user_name"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("triage", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(100), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("idempotency", sa.String(64), nullable=True),
        sa.Column("received", sa.Date(), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("actual_damage", sa.Boolean(), nullable=False),
        sa.Column("duplicate_of", sa.Integer(), nullable=True),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_reports_incident_id_incidents"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_reports"),
        sa.UniqueConstraint("idempotency", name="uq_reports_idempotency"),
    )
    op.create_index("ix_reports_owner", "reports", ["owner"])
    op.create_index("ix_reports_status", "reports", ["status"])
    op.create_index("ix_reports_duplicate_of", "reports", ["duplicate_of"])
    op.create_index("ix_reports_incident_id", "reports", ["incident_id"])
    op.create_index("ix_reports_received", "reports", ["received"])
    op.create_index(
        "ix_reports_month_counted_actual_damage", "reports", ["month", "counted", "actual_damage"]
    )
    op.create_table(
        "report_terms",
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("vocabulary", sa.String(20), nullable=False),
        sa.Column("code", sa.String(300), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("actual_damage", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name="fk_report_terms_report_id_reports",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("report_id", "vocabulary", "code", name="pk_report_terms"),
    )
    op.create_index(
        "ix_report_terms_month_counted_vocabulary_code_actual_damage",
        "report_terms",
        ["month", "counted", "vocabulary", "code", "actual_damage"],
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
    )
    op.create_index("ix_audit_report_id", "audit", ["report_id"])
    op.create_table(
        "published_months",
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("published_at", TS, nullable=False),
        sa.Column("published_by", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("month", name="pk_published_months"),
    )


def downgrade() -> None:
    for table in ("published_months", "audit", "report_terms", "reports", "incidents", "tokens"):
        op.drop_table(table)
    op.drop_table("users")
