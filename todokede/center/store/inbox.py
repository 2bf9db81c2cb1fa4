"""What the analyst's inbox, dashboard and report page ask of the reports besides the
reports themselves: the months there are reports for, and a report's links."""

from __future__ import annotations

from sqlalchemy import and_, select

from todokede.center.store import tables as t
from todokede.center.store.database import Database


class Inbox(Database):
    def report_months(self, *, counted: bool = False, limit: int = 240) -> list[str]:
        """The months with reports (with ``counted``, with counted reports), newest first."""
        r = t.reports.c
        query = select(r.month).distinct().order_by(r.month.desc()).limit(limit)
        if counted:
            query = query.where(r.counted.is_(True))
        with self._read() as conn:
            return [m for m in conn.execute(query).scalars() if m is not None]

    def duplicate_ids(self, id: int) -> list[int]:
        """The reports marked as duplicates of report ``id``, by id."""
        r = t.reports.c
        with self._read() as conn:
            query = select(r.id).where(r.duplicate_of == id).order_by(r.id)
            return list(conn.execute(query).scalars())

    def incident_report_ids(self, incident_id: int, *, besides: int | None = None) -> list[int]:
        """The reports linked to an incident (but ``besides``), by id."""
        r = t.reports.c
        where = [r.incident_id == incident_id]
        if besides is not None:
            where.append(r.id != besides)
        with self._read() as conn:
            return list(conn.execute(select(r.id).where(and_(*where)).order_by(r.id)).scalars())
