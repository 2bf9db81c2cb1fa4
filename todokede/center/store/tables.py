"""The center's tables (SQLAlchemy Core). The Alembic migrations in ``migrations/`` create
exactly these; ``Store`` is the only writer.

A report row keeps the reporter's document and the center's triage as JSON text, plus
denormalised, indexed columns kept in step on every write so that statistics are plain
GROUP BYs: ``received``, ``month``, ``status``, ``counted``, ``actual_damage`` (NULL when
unknown) and the ``report_terms`` rows (the EFFECTIVE classification codes, one row per
code; target services as target codes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    true,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone: it is added on read)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("role", String(20), nullable=False),
    Column("password_hash", Text, nullable=True),  # argon2; None = token-only user
    Column("created_at", UTCDateTime, nullable=False),
    # A disabled user's tokens and sessions are refused (kept, so enabling restores them).
    Column("enabled", Boolean, nullable=False, server_default=true()),
)

# API tokens: only the SHA-256 digest of each secret is kept.
tokens = Table(
    "tokens",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("user_name", String(100), ForeignKey("users.name"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# What happened (one incident may have several reports): reports point here by
# triage.incident_id, kept in the ``incident_id`` column too.
incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("title", Text, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

reports = Table(
    "reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("body", Text, nullable=False),  # Report as JSON
    Column("triage", Text, nullable=False),  # Triage as JSON
    Column("owner", String(100), nullable=True, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # SHA-256 of (owner, Idempotency-Key): a retried submission finds its first report.
    Column("idempotency", String(64), nullable=True, unique=True),
    # Denormalised from body + triage, rewritten on every write.
    Column("received", Date, nullable=False),
    Column("month", String(7), nullable=False),
    Column("status", String(20), nullable=False, index=True),
    Column("counted", Boolean, nullable=False),
    Column("actual_damage", Boolean, nullable=True),  # NULL: unknown
    Column("duplicate_of", Integer, nullable=True, index=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=True, index=True),
    Index(None, "month", "counted", "actual_damage"),
    Index(None, "received"),
)

# The effective codes of each report, one row per (vocabulary, code). ``month`` and
# ``counted`` are copied from the report so a month's statistics read one index.
report_terms = Table(
    "report_terms",
    metadata,
    Column(
        "report_id",
        Integer,
        ForeignKey("reports.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("vocabulary", String(20), primary_key=True),
    Column("code", String(300), primary_key=True),
    Column("month", String(7), nullable=False),
    Column("counted", Boolean, nullable=False),
    Column("actual_damage", Boolean, nullable=True),
    Index(None, "month", "counted", "vocabulary", "code", "actual_damage"),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("action", String(40), nullable=False),
    Column("report_id", Integer, nullable=True, index=True),
    Column("detail", Text, nullable=True),
)

# A month's publication, one row per revision (1, 2, ...): the frozen snapshot (the public
# rows, their public text and the statistics, as JSON) that every public view serves. The
# latest revision is the month's state: published, or withdrawn when ``withdrawn_at`` is set.
publications = Table(
    "publications",
    metadata,
    Column("month", String(7), primary_key=True),
    Column("revision", Integer, primary_key=True, autoincrement=False),
    Column("published_at", UTCDateTime, nullable=False),
    Column("published_by", String(100), nullable=False),
    Column("digest", String(64), nullable=True),  # SHA-256 of the snapshot and its documents
    Column("snapshot", Text, nullable=True),  # None only for a month published before snapshots
    Column("withdrawn_at", UTCDateTime, nullable=True),
    Column("withdrawn_by", String(100), nullable=True),
    Column("withdrawn_reason", Text, nullable=True),
)

# The documents of a revision (``ja.html``, ``en.md``, ``ja.pdf``, ``en.monthly.svg`` ...):
# written when it is published, the PDF on its first request; never changed afterwards.
publication_files = Table(
    "publication_files",
    metadata,
    Column("month", String(7), primary_key=True),
    Column("revision", Integer, primary_key=True, autoincrement=False),
    Column("name", String(40), primary_key=True),
    Column("body", LargeBinary, nullable=False),
    ForeignKeyConstraint(
        ["month", "revision"], ["publications.month", "publications.revision"], ondelete="CASCADE"
    ),
)

# Web sign-ins: the cookie holds only a random id; the center keeps its SHA-256 digest, so
# a copy of the database opens no session. The user's role and whether the account is
# enabled are read from ``users`` on every request, never from here.
sessions = Table(
    "sessions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("user_name", String(100), ForeignKey("users.name"), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("flash", Text, nullable=False),  # JSON list of message keys shown once
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)
