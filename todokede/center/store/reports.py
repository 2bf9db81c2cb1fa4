"""The center's store: reports, triage, drafts, incidents, publication, users, audit — on
SQLite or PostgreSQL.

``Store.open(url)`` connects and brings the schema up to date with the bundled Alembic
migrations. Every write is one transaction: the report row, its denormalised columns and
``report_terms`` rows, and the audit entry are committed together or not at all, so a
crash never leaves a half-written report.

``Store`` gathers the parts, one module each: the connection and transactions
(``database``), the rows a report maps to (``rows``), users and tokens (``users``), web
sessions (``logins``),
incidents (``incidents``) and the audit log (``audit``); the reports themselves are here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from todokede.center import months
from todokede.center.intake.schema import Report, StoredReport, Triage
from todokede.center.store import tables as t
from todokede.center.store.audit import INSERT_AUDIT, AuditEntry, AuditLog
from todokede.center.store.audit import record as _audit
from todokede.center.store.auth import User
from todokede.center.store.changes import Changes
from todokede.center.store.database import now as _now
from todokede.center.store.filters import ReportFilter
from todokede.center.store.inbox import Inbox
from todokede.center.store.incidents import Incident, Incidents
from todokede.center.store.logins import Logins
from todokede.center.store.publications import Publications, Revision
from todokede.center.store.rows import REPORT_COLS as _REPORT_COLS
from todokede.center.store.rows import columns as _columns
from todokede.center.store.rows import report_row as _report_row
from todokede.center.store.rows import stored as _stored
from todokede.center.store.rows import term_rows as _term_rows
from todokede.center.store.statistics import Statistics
from todokede.center.store.users import Users
from todokede.errors import NotFound, StoreError

# ``_columns`` and ``_term_rows`` stay importable from here: bench/center.py fills a
# database with them.
__all__ = [
    "AuditEntry",
    "Incident",
    "NewReport",
    "Revision",
    "Store",
    "User",
    "_columns",
    "_term_rows",
]


@dataclass(frozen=True)
class NewReport:
    """A report to store, as ``add_report`` takes it (for ``add_reports``)."""

    report: Report
    owner: str | None = None
    triage: Triage | None = None
    idempotency_key: str | None = None


def _idem(owner: str | None, key: str | None) -> str | None:
    if key is None:
        return None
    return hashlib.sha256(f"{owner or ''}\n{key}".encode()).hexdigest()


# Statements built once: parameters are bound per call, so SQLAlchemy's compiled cache hits.
_INSERT_REPORTS = insert(t.reports).returning(t.reports.c.id, sort_by_parameter_order=True)


def _by_idempotency(conn: Connection, keys: set[str]) -> dict[str, StoredReport]:
    """The reports already stored under these idempotency keys."""
    if not keys:
        return {}
    rows = conn.execute(
        select(*_REPORT_COLS, t.reports.c.idempotency).where(t.reports.c.idempotency.in_(keys))
    ).mappings()
    return {r["idempotency"]: _stored(r) for r in rows}


def _insert_reports(conn: Connection, params: list[dict[str, Any]]) -> list[int]:
    """Insert report rows; their new ids, in order."""
    if conn.dialect.name != "sqlite":
        return list(conn.execute(_INSERT_REPORTS, params).scalars().all())
    # BEGIN IMMEDIATE holds the write lock: number the rows here and insert them with one
    # executemany (RETURNING would cost a statement per row).
    last = conn.execute(select(func.max(t.reports.c.id))).scalar_one() or 0
    ids = list(range(last + 1, last + 1 + len(params)))
    conn.execute(insert(t.reports), [{**p, "id": i} for p, i in zip(params, ids, strict=True)])
    return ids


class Store(Changes, Users, Logins, Incidents, Publications, Statistics, Inbox, AuditLog):
    """The center's database. Thread-safe: one Store serves a whole web process."""

    # -- reports -----------------------------------------------------------------------

    def add_report(
        self,
        report: Report,
        *,
        owner: str | None = None,
        triage: Triage | None = None,
        idempotency_key: str | None = None,
    ) -> StoredReport:
        """Store a new report (the center sets ``received`` to today when absent).

        With ``idempotency_key``, a second call by the same owner with the same key returns
        the first report instead of storing another."""
        item = NewReport(report, owner, triage, idempotency_key)
        try:
            return self.add_reports([item])[0]
        except StoreError as exc:
            if idempotency_key is None or not isinstance(exc.__cause__, IntegrityError):
                raise
            # Two retries raced with the same key: the other one won; return its report.
            found = self._by_idempotency(_idem(owner, idempotency_key) or "")
            if found is None:
                raise
            return found

    def add_reports(self, items: Sequence[NewReport]) -> list[StoredReport]:
        """Store several new reports in ONE transaction (all or none), in order: how the
        web app commits concurrent submissions together. Idempotency keys work as in
        ``add_report``, within the batch too."""
        now = _now()
        prepared: list[tuple[str | None, StoredReport, dict[str, Any]]] = []
        for it in items:
            report = it.report
            if report.received is None:
                report = report.model_copy(update={"received": now.date()})
            draft = StoredReport(id=0, report=report, triage=it.triage or Triage(),
                                 owner=it.owner, created_at=now, updated_at=now)  # fmt: skip
            prepared.append((_idem(it.owner, it.idempotency_key), draft, _columns(draft)))
        stored: dict[int, StoredReport] = {}
        first_of: dict[str, int] = {}
        with self._write() as conn:
            existing = _by_idempotency(conn, {k for k, _, _ in prepared if k is not None})
            todo: list[int] = []
            for i, (idem, draft, _) in enumerate(prepared):
                if idem is not None:
                    if idem in existing or idem in first_of:
                        continue
                    first_of[idem] = i
                if draft.triage.duplicate_of is not None or draft.triage.incident_id is not None:
                    self._check_links(conn, None, draft.triage)
                todo.append(i)
            if not todo:
                return [self._resolve(i, p[0], stored, existing, first_of)
                        for i, p in enumerate(prepared)]  # fmt: skip
            params = [
                {"owner": prepared[i][1].owner, "created_at": now, "updated_at": now,
                 "idempotency": prepared[i][0], **prepared[i][2]}
                for i in todo
            ]  # fmt: skip
            ids = _insert_reports(conn, params)
            terms: list[dict[str, Any]] = []
            audits: list[dict[str, Any]] = []
            for i, new_id in zip(todo, ids, strict=True):
                _, draft, cols = prepared[i]
                sr = draft.model_copy(update={"id": new_id})
                stored[i] = sr
                terms += _term_rows(sr, cols)
                audits.append({"at": now, "actor": sr.owner or "-", "action": "create",
                               "report_id": new_id, "detail": None})  # fmt: skip
            if terms:
                conn.execute(insert(t.report_terms), terms)
            conn.execute(INSERT_AUDIT, audits)
        return [self._resolve(i, p[0], stored, existing, first_of) for i, p in enumerate(prepared)]

    @staticmethod
    def _resolve(
        i: int,
        idem: str | None,
        stored: dict[int, StoredReport],
        existing: dict[str, StoredReport],
        first_of: dict[str, int],
    ) -> StoredReport:
        if i in stored:
            return stored[i]
        assert idem is not None
        return existing[idem] if idem in existing else stored[first_of[idem]]

    def _by_idempotency(self, idem: str) -> StoredReport | None:
        with self._read() as conn:
            row = (
                conn.execute(select(*_REPORT_COLS).where(t.reports.c.idempotency == idem))
                .mappings()
                .first()
            )
        return None if row is None else _stored(row)

    def get_report(self, id: int, *, actor: str | None = None) -> StoredReport:
        """One report, confidential parts included: the read is audited."""
        with self._write() as conn:
            row = _report_row(conn, id)
            _audit(conn, actor or "-", "read", id, None, _now())
        return _stored(row)

    def report_owner(self, id: int) -> str | None:
        """The owner of a report, without reading (or auditing) its content. NotFound."""
        with self._read() as conn:
            row = conn.execute(select(t.reports.c.owner).where(t.reports.c.id == id)).first()
        if row is None:
            raise NotFound(f"no report {id}")
        owner: str | None = row[0]
        return owner

    def list_reports(
        self,
        *,
        month: str | None = None,
        status: str | None = None,
        owner: str | None = None,
        limit: int = 100,
        offset: int = 0,
        newest_first: bool = False,
        drafts: bool = True,
        filters: ReportFilter | None = None,
    ) -> tuple[list[StoredReport], int]:
        """A page of reports (by id) and the total matching; ``drafts=False`` leaves out
        drafts unless ``status`` asks for them; ``filters`` adds the inbox's. Not audited:
        callers that show a report's reporter or evidence record that with ``audit()``."""
        where = filters.conditions() if filters is not None else []
        if month is not None:
            where.append(t.reports.c.month == months.check(month))
        if status is not None:
            where.append(t.reports.c.status == status)
        elif not drafts:
            where.append(t.reports.c.status != "draft")
        if owner is not None:
            where.append(t.reports.c.owner == owner)
        order = t.reports.c.id.desc() if newest_first else t.reports.c.id
        with self._read() as conn:
            total = conn.execute(
                select(func.count()).select_from(t.reports).where(*where)
            ).scalar_one()
            rows = (
                conn.execute(
                    select(*_REPORT_COLS)
                    .where(*where)
                    .order_by(order)
                    .limit(max(0, limit))
                    .offset(max(0, offset))
                )
                .mappings()
                .all()
            )
        return [_stored(r) for r in rows], int(total)

    def iter_reports(
        self,
        *,
        received_from: date | None = None,
        received_before: date | None = None,
        batch: int = 1000,
    ) -> Iterator[StoredReport]:
        """Every report received in [from, before), by id, fetched in batches (no
        connection is held while the caller works). Not audited, as ``list_reports``."""
        last = 0
        while True:
            where = [t.reports.c.id > last]
            if received_from is not None:
                where.append(t.reports.c.received >= received_from)
            if received_before is not None:
                where.append(t.reports.c.received < received_before)
            with self._read() as conn:
                rows = (
                    conn.execute(
                        select(*_REPORT_COLS).where(*where).order_by(t.reports.c.id).limit(batch)
                    )
                    .mappings()
                    .all()
                )
            if not rows:
                return
            for row in rows:
                yield _stored(row)
            last = rows[-1]["id"]

    # -- publication -------------------------------------------------------------------

    def publish_month(
        self, month: str, *, actor: str, today: date | None = None, digest: str | None = None
    ) -> Revision:
        """Publish ``month`` (a closed month in the past): freeze its snapshot as the next
        revision, audited. With ``digest`` (from a preview), refuse if what would be
        published differs from what was previewed. See ``todokede.center.publication.snapshot``."""
        # The snapshot is drawn from the statistics and the publication, which sit above
        # the store: imported here, when a month is published.
        from todokede.center.publication import snapshot

        return snapshot.publish(self, month, actor=actor, today=today, digest=digest)
