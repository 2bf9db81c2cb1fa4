"""Published months: numbered revisions of a frozen snapshot, their documents, withdrawal.

The store keeps what ``todokede.center.publication.snapshot`` took (JSON and rendered documents) and
never changes it: publishing again adds revision N+1, withdrawing marks the latest
revision. A month's state is its latest revision. Every change is audited in the same
transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from todokede.center.store import tables as t
from todokede.center.store.audit import record
from todokede.center.store.database import Database, now
from todokede.errors import Conflict, NotFound, StoreError


@dataclass(frozen=True)
class Revision:
    """One publication of a month."""

    month: str
    revision: int
    published_at: datetime
    published_by: str
    digest: str | None
    withdrawn_at: datetime | None = None
    withdrawn_by: str | None = None
    withdrawn_reason: str | None = None

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None


_COLS = [c for c in t.publications.c if c.name != "snapshot"]


def _revision(row: Any) -> Revision:
    return Revision(**{c.name: row[c.name] for c in _COLS})


class Publications(Database):
    """The store's publication methods (the snapshots themselves are built above it)."""

    def add_revision(
        self, month: str, *, snapshot: str, digest: str, files: dict[str, bytes], actor: str
    ) -> Revision:
        """Store a new revision of ``month`` (1 for the first) with its documents; audited
        as ``publish`` with the revision and digest."""
        at = now()
        with self._write() as conn:
            last = conn.execute(
                select(func.max(t.publications.c.revision)).where(t.publications.c.month == month)
            ).scalar_one()
            number = (last or 0) + 1
            conn.execute(
                insert(t.publications).values(
                    month=month, revision=number, published_at=at, published_by=actor,
                    digest=digest, snapshot=snapshot,
                )
            )  # fmt: skip
            _insert_files(conn, month, number, files)
            detail = {"month": month, "revision": number, "digest": digest}
            record(conn, actor, "publish", None, json.dumps(detail), at)
        return Revision(month, number, at, actor, digest)

    def withdraw_month(self, month: str, *, actor: str, reason: str | None = None) -> Revision:
        """Withdraw the published revision of ``month`` (it stays in the record, shown as
        withdrawn); audited. NotFound if never published; Conflict if withdrawn already."""
        at = now()
        with self._write() as conn:
            latest = self._latest(conn, month)
            if latest is None:
                raise NotFound(f"{month} has not been published")
            if latest.withdrawn:
                raise Conflict(f"{month} has been withdrawn already", field="month")
            conn.execute(
                update(t.publications)
                .where(_key(month, latest.revision))
                .values(withdrawn_at=at, withdrawn_by=actor, withdrawn_reason=reason)
            )
            detail = {"month": month, "revision": latest.revision, "reason": reason}
            record(conn, actor, "withdraw", None, json.dumps(detail, ensure_ascii=False), at)
        return Revision(
            month, latest.revision, latest.published_at, latest.published_by, latest.digest,
            at, actor, reason,
        )  # fmt: skip

    def freeze(self, month: str, revision: int, *, snapshot: str, digest: str,
               files: dict[str, bytes], actor: str) -> bool:  # fmt: skip
        """Give a revision stored before snapshots existed its snapshot, once (False if
        it has one already: another process froze it first). Audited as ``freeze``."""
        with self._write() as conn:
            done = conn.execute(
                update(t.publications)
                .where(_key(month, revision), t.publications.c.snapshot.is_(None))
                .values(snapshot=snapshot, digest=digest)
            ).rowcount
            if not done:
                return False
            _insert_files(conn, month, revision, files)
            detail = {"month": month, "revision": revision, "digest": digest}
            record(conn, actor, "freeze", None, json.dumps(detail), now())
        return True

    def revision(self, month: str) -> Revision | None:
        """The latest revision of ``month`` (its state), or None if never published."""
        with self._read() as conn:
            return self._latest(conn, month)

    def revisions(self, month: str | None = None) -> list[Revision]:
        """Every revision (of one month, or all), by month then number."""
        query = select(*_COLS).order_by(t.publications.c.month, t.publications.c.revision)
        if month is not None:
            query = query.where(t.publications.c.month == month)
        with self._read() as conn:
            return [_revision(r) for r in conn.execute(query).mappings()]

    def latest_revisions(self) -> list[Revision]:
        """The state of every month ever published (its latest revision), by month."""
        latest: dict[str, Revision] = {}
        for rev in self.revisions():
            latest[rev.month] = rev
        return list(latest.values())

    def published_months(self) -> list[str]:
        """The months published now (latest revision not withdrawn), oldest first."""
        return [r.month for r in self.latest_revisions() if not r.withdrawn]

    def snapshot_text(self, month: str, revision: int) -> str | None:
        """A revision's snapshot as stored (JSON), None if not frozen yet. NotFound."""
        with self._read() as conn:
            row = conn.execute(
                select(t.publications.c.snapshot).where(_key(month, revision))
            ).first()
        if row is None:
            raise NotFound(f"no revision {revision} of {month}")
        text: str | None = row[0]
        return text

    def publication_file(self, month: str, revision: int, name: str) -> bytes | None:
        """A stored document of a revision, or None."""
        with self._read() as conn:
            row = conn.execute(
                select(t.publication_files.c.body).where(
                    _key(month, revision, t.publication_files), t.publication_files.c.name == name
                )
            ).first()
        return None if row is None else bytes(row[0])

    def add_publication_file(self, month: str, revision: int, name: str, body: bytes) -> bytes:
        """Keep a document rendered later (the PDF); if another process stored it first,
        theirs is kept and returned: a revision's documents never change."""
        try:
            with self._write() as conn:
                conn.execute(
                    insert(t.publication_files).values(
                        month=month, revision=revision, name=name, body=body
                    )
                )
        except StoreError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
        found = self.publication_file(month, revision, name)
        return body if found is None else found

    @staticmethod
    def _latest(conn: Connection, month: str) -> Revision | None:
        row = (
            conn.execute(
                select(*_COLS)
                .where(t.publications.c.month == month)
                .order_by(t.publications.c.revision.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        return None if row is None else _revision(row)


def _insert_files(conn: Connection, month: str, revision: int, files: dict[str, bytes]) -> None:
    if files:
        rows = [{"month": month, "revision": revision, "name": k, "body": v}
                for k, v in sorted(files.items())]  # fmt: skip
        conn.execute(insert(t.publication_files), rows)


def _key(month: str, revision: int, table: Any = t.publications) -> Any:
    return and_(table.c.month == month, table.c.revision == revision)
