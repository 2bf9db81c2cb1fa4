"""The audit log: every change to a report, and every read of its confidential part, with
who did it and when. Entries are written in the same transaction as what they record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from todokede.center.store import tables as t
from todokede.center.store.database import Database, now

INSERT_AUDIT = insert(t.audit)  # built once: SQLAlchemy's compiled cache hits
AUDIT_SHOWN = 500  # entries of one report's trail on its page and from the API


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str  # create, read, update, send, triage, addition, publish, user-add, ...
    report_id: int | None
    detail: str | None


def record(
    conn: Connection,
    actor: str,
    action: str,
    report_id: int | None,
    detail: str | None,
    at: datetime,
) -> None:
    """Add an entry within the caller's transaction."""
    conn.execute(
        INSERT_AUDIT,
        {"at": at, "actor": actor, "action": action, "report_id": report_id, "detail": detail},
    )


class AuditLog(Database):
    """The store's audit methods."""

    def audit(
        self, action: str, *, actor: str, report_id: int | None = None, detail: str | None = None
    ) -> None:
        """Record something done outside the store's own methods (an export with personal
        data, a page showing a reporter)."""
        with self._write() as conn:
            record(conn, actor, action, report_id, detail, now())

    def audit_log(self, report_id: int | None = None, *, limit: int = 10_000) -> list[AuditEntry]:
        """Audit entries, oldest first (of one report, or all)."""
        query = select(t.audit).order_by(t.audit.c.id).limit(limit)
        if report_id is not None:
            query = query.where(t.audit.c.report_id == report_id)
        with self._read() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            AuditEntry(r["id"], r["at"], r["actor"], r["action"], r["report_id"], r["detail"])
            for r in rows
        ]
