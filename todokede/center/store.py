"""The center's store: reports, triage, users, audit — on SQLite or PostgreSQL.

``Store.open(url)`` connects and brings the schema up to date with the bundled Alembic
migrations. Every write is one transaction: the report row, its denormalised columns and
``report_terms`` rows, and the audit entry are committed together or not at all, so a
crash never leaves a half-written report. SQLite runs in WAL mode; writers take the lock
up front (``BEGIN IMMEDIATE``) so concurrent requests queue instead of failing.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import (
    Connection,
    Engine,
    RowMapping,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from todokede.center import tables as t
from todokede.center.auth import (
    ROLES,
    User,
    hash_password,
    new_token,
    token_digest,
    verify_password,
)
from todokede.center.schema import Addition, Report, StoredReport, Triage
from todokede.errors import InputError, NotFound, StoreError

__all__ = ["AuditEntry", "Incident", "NewReport", "Store", "User"]

MIGRATIONS = Path(__file__).parent / "migrations"
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
_LOCK_ID = 19960808  # PostgreSQL advisory lock serialising concurrent migrations


@dataclass(frozen=True)
class NewReport:
    """A report to store, as ``add_report`` takes it (for ``add_reports``)."""

    report: Report
    owner: str | None = None
    triage: Triage | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str  # create, read, triage, addition, publish, user-add, incident-add, ...
    report_id: int | None
    detail: str | None


@dataclass(frozen=True)
class Incident:
    id: int
    title: str
    created_by: str
    created_at: datetime
    report_ids: tuple[int, ...]


def _now() -> datetime:
    return datetime.now(UTC)


def _idem(owner: str | None, key: str | None) -> str | None:
    if key is None:
        return None
    return hashlib.sha256(f"{owner or ''}\n{key}".encode()).hexdigest()


def _check_month(month: str) -> str:
    if not _MONTH.match(month):
        raise InputError(f"month must be YYYY-MM, not {month!r}", field="month")
    return month


def _normalise_url(url: str) -> str:
    # psycopg 3 is the driver installed; plain postgresql:// would ask for psycopg2.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _terms(sr: StoredReport) -> list[tuple[str, str]]:
    """The effective (vocabulary, code) pairs statistics count."""
    pairs = [("method", c) for c in sr.effective_methods()]
    pairs += [("damage", c) for c in sr.effective_damage()]
    pairs += [("cause", c) for c in sr.effective_causes()]
    if sr.report.reporter.type:
        pairs.append(("reporter_type", sr.report.reporter.type))
    pairs += [("target", c) for c in sr.report.targets]
    return list(dict.fromkeys(pairs))


def _columns(sr: StoredReport) -> dict[str, Any]:
    received = sr.report.received
    assert received is not None
    return {
        "body": sr.report.model_dump_json(),
        "triage": sr.triage.model_dump_json(),
        "received": received,
        "month": received.strftime("%Y-%m"),
        "status": sr.triage.status,
        "counted": sr.counted,
        "actual_damage": sr.effective_actual_damage(),
        "duplicate_of": sr.triage.duplicate_of,
        "incident_id": sr.triage.incident_id,
    }


def _term_rows(sr: StoredReport, cols: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "report_id": sr.id,
            "vocabulary": vocab,
            "code": code,
            "month": cols["month"],
            "counted": cols["counted"],
            "actual_damage": cols["actual_damage"],
        }
        for vocab, code in _terms(sr)
    ]


def _stored(row: RowMapping) -> StoredReport:
    try:
        return StoredReport(
            id=row["id"],
            report=Report.model_validate_json(row["body"]),
            triage=Triage.model_validate_json(row["triage"]),
            owner=row["owner"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )
    except ValidationError as exc:
        raise StoreError(f"report {row['id']} in the database does not validate: {exc}") from exc


_REPORT_COLS = (
    t.reports.c.id,
    t.reports.c.body,
    t.reports.c.triage,
    t.reports.c.owner,
    t.reports.c.created_at,
    t.reports.c.updated_at,
)


# Statements built once: parameters are bound per call, so SQLAlchemy's compiled cache hits.
_INSERT_REPORTS = insert(t.reports).returning(t.reports.c.id, sort_by_parameter_order=True)
_INSERT_AUDIT = insert(t.audit)


class Store:
    """The center's database. Thread-safe: one Store serves a whole web process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time. Queue this process's writers on a lock (woken
        # at once) rather than in SQLite's busy handler (which sleeps in growing steps);
        # other processes still wait through busy_timeout.
        self._write_lock = threading.RLock() if engine.dialect.name == "sqlite" else None
        # In-memory SQLite is one shared connection: readers must queue as well.
        memory = engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")
        self._read_lock = self._write_lock if memory else None

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect to ``url`` (``sqlite:///FILE``, ``sqlite://`` in memory, or a PostgreSQL
        URL) and create or upgrade the schema."""
        url = _normalise_url(url)
        try:
            engine = _engine(url)
            store = cls(engine)
            store._migrate()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the database {_safe_url(url)}: {exc}") from exc
        return store

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def _migrate(self) -> None:
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        head = ScriptDirectory.from_config(config).get_current_head()
        with self._write() as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_ID})")
            if MigrationContext.configure(conn).get_current_revision() == head:
                return
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def _write(self) -> _Tx:
        return _Tx(self.engine, write=True, lock=self._write_lock)

    def _read(self) -> _Tx:
        return _Tx(self.engine, write=False, lock=self._read_lock)

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
        existing: dict[str, StoredReport] = {}
        with self._write() as conn:
            keys = {idem for idem, _, _ in prepared if idem is not None}
            if keys:
                rows = conn.execute(
                    select(*_REPORT_COLS, t.reports.c.idempotency).where(
                        t.reports.c.idempotency.in_(keys)
                    )
                ).mappings()
                existing = {r["idempotency"]: _stored(r) for r in rows}
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
            if conn.dialect.name == "sqlite":
                # BEGIN IMMEDIATE holds the write lock: number the rows here and insert
                # them with one executemany (RETURNING would cost a statement per row).
                last = conn.execute(select(func.max(t.reports.c.id))).scalar_one() or 0
                ids = list(range(last + 1, last + 1 + len(params)))
                conn.execute(
                    insert(t.reports), [{**p, "id": i} for p, i in zip(params, ids, strict=True)]
                )
            else:
                ids = list(conn.execute(_INSERT_REPORTS, params).scalars().all())
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
            conn.execute(_INSERT_AUDIT, audits)
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
    ) -> tuple[list[StoredReport], int]:
        """A page of reports (by id) and the total matching. Not audited: callers that
        show a report's reporter or evidence record that with ``audit()``."""
        where = []
        if month is not None:
            where.append(t.reports.c.month == _check_month(month))
        if status is not None:
            where.append(t.reports.c.status == status)
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

    def set_triage(self, id: int, triage: Triage, *, actor: str) -> StoredReport:
        """Replace a report's triage (classify, status, links); audited with the changes."""
        return self._change_triage(id, lambda _old: triage, actor)

    def update_triage(self, id: int, changes: dict[str, Any], *, actor: str) -> StoredReport:
        """Change some triage fields (e.g. ``{"status": "triaged"}``) atomically."""

        def merge(old: Triage) -> Triage:
            try:
                return Triage.model_validate({**old.model_dump(), **changes})
            except ValidationError as exc:
                err = exc.errors()[0]
                raise InputError(
                    err["msg"], field=".".join(str(p) for p in err["loc"]) or None
                ) from exc

        return self._change_triage(id, merge, actor)

    def _change_triage(
        self, id: int, change: Callable[[Triage], Triage], actor: str
    ) -> StoredReport:
        now = _now()
        with self._write() as conn:
            old = _stored(_report_row(conn, id, lock=True))
            triage = change(old.triage)
            self._check_links(conn, id, triage)
            new = old.model_copy(update={"triage": triage, "updated_at": now})
            self._rewrite(conn, new)
            changes = {k: [v, getattr(triage, k)] for k, v in old.triage if v != getattr(triage, k)}
            _audit(conn, actor, "triage", id, json.dumps(changes, ensure_ascii=False), now)
        return new

    def get_triage(self, id: int) -> Triage:
        """A report's triage alone (not confidential: not audited). NotFound."""
        with self._read() as conn:
            row = conn.execute(select(t.reports.c.triage).where(t.reports.c.id == id)).first()
        if row is None:
            raise NotFound(f"no report {id}")
        return Triage.model_validate_json(row[0])

    def add_addition(self, id: int, addition: Addition, *, actor: str) -> StoredReport:
        """Append a later finding (追加報告) to a report; audited."""
        now = _now()
        with self._write() as conn:
            old = _stored(_report_row(conn, id, lock=True))
            try:
                report = Report.model_validate(
                    {**old.report.model_dump(), "additions": [*old.report.additions, addition]}
                )
            except ValidationError as exc:
                raise InputError(
                    f"report {id} cannot take another addition: {exc.errors()[0]['msg']}",
                    field="additions",
                ) from exc
            new = old.model_copy(update={"report": report, "updated_at": now})
            self._rewrite(conn, new)
            _audit(conn, actor, "addition", id, None, now)
        return new

    def _rewrite(self, conn: Connection, sr: StoredReport) -> None:
        cols = _columns(sr)
        conn.execute(
            update(t.reports)
            .where(t.reports.c.id == sr.id)
            .values(updated_at=sr.updated_at, **cols)
        )
        conn.execute(delete(t.report_terms).where(t.report_terms.c.report_id == sr.id))
        rows = _term_rows(sr, cols)
        if rows:
            conn.execute(insert(t.report_terms), rows)

    def _check_links(self, conn: Connection, id: int | None, triage: Triage) -> None:
        dup = triage.duplicate_of
        if dup is not None:
            if dup == id:
                raise InputError("a report cannot duplicate itself", field="duplicate_of")
            exists = conn.execute(select(t.reports.c.id).where(t.reports.c.id == dup)).first()
            if exists is None:
                raise InputError(f"no report {dup}", field="duplicate_of")
        inc = triage.incident_id
        if inc is not None:
            exists = conn.execute(select(t.incidents.c.id).where(t.incidents.c.id == inc)).first()
            if exists is None:
                raise InputError(f"no incident {inc}", field="incident_id")

    # -- incidents ---------------------------------------------------------------------

    def add_incident(self, title: str, *, actor: str) -> Incident:
        """A new incident (what happened); reports join it by ``triage.incident_id``."""
        title = title.strip()
        if not title or len(title) > 300:
            raise InputError("an incident needs a title of 1-300 characters", field="title")
        now = _now()
        with self._write() as conn:
            new_id = conn.execute(
                insert(t.incidents)
                .values(title=title, created_by=actor, created_at=now)
                .returning(t.incidents.c.id)
            ).scalar_one()
            _audit(conn, actor, "incident-add", None, json.dumps({"incident": new_id}), now)
        return Incident(new_id, title, actor, now, ())

    def get_incident(self, id: int) -> Incident:
        with self._read() as conn:
            row = conn.execute(select(t.incidents).where(t.incidents.c.id == id)).mappings().first()
            if row is None:
                raise NotFound(f"no incident {id}")
            ids = conn.execute(
                select(t.reports.c.id).where(t.reports.c.incident_id == id).order_by(t.reports.c.id)
            ).scalars()
            return Incident(row["id"], row["title"], row["created_by"], row["created_at"], (*ids,))

    # -- audit -------------------------------------------------------------------------

    def audit(
        self, action: str, *, actor: str, report_id: int | None = None, detail: str | None = None
    ) -> None:
        """Record something done outside the store's own methods (an export with personal
        data, a page showing a reporter)."""
        with self._write() as conn:
            _audit(conn, actor, action, report_id, detail, _now())

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

    # -- publication -------------------------------------------------------------------

    def publish_month(self, month: str, *, actor: str) -> None:
        """Mark a month as published: the public endpoints then serve its counted,
        reviewed reports (anonymised). Publishing again changes nothing."""
        _check_month(month)
        now = _now()
        with self._write() as conn:
            exists = conn.execute(
                select(t.published.c.month).where(t.published.c.month == month)
            ).first()
            if exists is None:
                conn.execute(
                    insert(t.published).values(month=month, published_at=now, published_by=actor)
                )
                _audit(conn, actor, "publish", None, json.dumps({"month": month}), now)

    def published_months(self) -> list[str]:
        with self._read() as conn:
            return list(
                conn.execute(select(t.published.c.month).order_by(t.published.c.month)).scalars()
            )

    # -- users -------------------------------------------------------------------------

    def add_user(self, name: str, role: str, password: str | None = None) -> str:
        """Create a user; returns its first API token (shown once, stored as a digest)."""
        if not _NAME.match(name):
            raise InputError(
                "a user name is 1-100 letters, digits or . _ @ - (starting with a letter or digit)",
                field="name",
            )
        if role not in ROLES:
            raise InputError(f"role must be one of {', '.join(ROLES)}", field="role")
        now = _now()
        token = new_token()
        try:
            with self._write() as conn:
                conn.execute(
                    insert(t.users).values(
                        name=name,
                        role=role,
                        password_hash=hash_password(password) if password else None,
                        created_at=now,
                    )
                )
                conn.execute(
                    insert(t.tokens).values(
                        digest=token_digest(token), user_name=name, created_at=now
                    )
                )
                _audit(conn, name, "user-add", None, json.dumps({"role": role}), now)
        except StoreError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            raise InputError(f"user {name!r} exists already", field="name") from exc
        return token

    def new_token(self, name: str) -> str:
        """Another API token for an existing user."""
        token = new_token()
        with self._write() as conn:
            if conn.execute(select(t.users.c.name).where(t.users.c.name == name)).first() is None:
                raise NotFound(f"no user {name!r}")
            conn.execute(
                insert(t.tokens).values(
                    digest=token_digest(token), user_name=name, created_at=_now()
                )
            )
            _audit(conn, name, "token-add", None, None, _now())
        return token

    def set_password(self, name: str, password: str) -> None:
        with self._write() as conn:
            done = conn.execute(
                update(t.users)
                .where(t.users.c.name == name)
                .values(password_hash=hash_password(password))
            )
            if done.rowcount == 0:
                raise NotFound(f"no user {name!r}")
            _audit(conn, name, "password-set", None, None, _now())

    def user_for_token(self, token: str) -> User | None:
        """The user an API token belongs to (one SHA-256 and an indexed lookup)."""
        query = (
            select(t.users.c.name, t.users.c.role)
            .join(t.tokens, t.tokens.c.user_name == t.users.c.name)
            .where(t.tokens.c.digest == token_digest(token))
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else User(row[0], row[1])

    def authenticate(self, name: str, password: str) -> User | None:
        """The user, if the password matches (argon2)."""
        with self._read() as conn:
            row = conn.execute(
                select(t.users.c.role, t.users.c.password_hash).where(t.users.c.name == name)
            ).first()
        ok = verify_password(row[1] if row else None, password)
        return User(name, row[0]) if ok and row is not None else None

    def get_user(self, name: str) -> User | None:
        with self._read() as conn:
            row = conn.execute(select(t.users.c.role).where(t.users.c.name == name)).first()
        return None if row is None else User(name, row[0])

    def list_users(self) -> list[User]:
        with self._read() as conn:
            rows = conn.execute(select(t.users.c.name, t.users.c.role).order_by(t.users.c.name))
            return [User(r[0], r[1]) for r in rows]


# -- internals -------------------------------------------------------------------------


class _Tx:
    """``with store._write() as conn``: one transaction; database errors become
    StoreError (input errors pass through untouched)."""

    def __init__(self, engine: Engine, *, write: bool, lock: threading.RLock | None) -> None:
        self.engine = engine
        self.write = write
        self.lock = lock
        self.conn: Connection | None = None

    def __enter__(self) -> Connection:
        if self.lock is not None:
            self.lock.acquire()
        try:
            conn = self.engine.connect()
            if self.write:
                conn = conn.execution_options(todokede_write=True)
            conn.begin()
        except SQLAlchemyError as exc:
            if self.lock is not None:
                self.lock.release()
            raise StoreError(f"database unavailable: {exc}") from exc
        self.conn = conn
        return conn

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        conn = self.conn
        assert conn is not None
        try:
            if exc_type is None:
                conn.commit()
            else:
                conn.rollback()
        except SQLAlchemyError as err:
            raise StoreError(f"database error: {err}") from err
        finally:
            conn.close()
            if self.lock is not None:
                self.lock.release()
        if isinstance(exc, SQLAlchemyError):
            raise StoreError(f"database error: {exc}") from exc


def _report_row(conn: Connection, id: int, *, lock: bool = False) -> RowMapping:
    query = select(*_REPORT_COLS).where(t.reports.c.id == id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFound(f"no report {id}")
    return row


def _audit(
    conn: Connection,
    actor: str,
    action: str,
    report_id: int | None,
    detail: str | None,
    at: datetime,
) -> None:
    conn.execute(
        _INSERT_AUDIT,
        {"at": at, "actor": actor, "action": action, "report_id": report_id, "detail": detail},
    )


def _safe_url(url: str) -> str:
    # Never print a password from the URL.
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        if memory:
            engine = create_engine(
                url, poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        else:
            engine = create_engine(
                url,
                pool_size=8,
                max_overflow=16,
                connect_args={"check_same_thread": False, "timeout": 30},
            )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's begin event issue BEGIN itself (pysqlite would defer it).
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                # WAL + NORMAL: a committed report survives a killed process (not a
                # power cut before the next checkpoint; use PostgreSQL for that).
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("todokede_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    # A bounded connect: submissions commit on the event loop, which must not hang.
    return create_engine(url, pool_size=10, max_overflow=20, connect_args={"connect_timeout": 10})
