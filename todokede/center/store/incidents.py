"""Incidents: what happened, as opposed to the reports about it. One incident may have
several reports; a report joins one by ``triage.incident_id``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select

from todokede.center.store import tables as t
from todokede.center.store.audit import record
from todokede.center.store.database import Database, now
from todokede.errors import InputError, NotFound


@dataclass(frozen=True)
class Incident:
    id: int
    title: str
    created_by: str
    created_at: datetime
    report_ids: tuple[int, ...]


class Incidents(Database):
    """The store's incident methods."""

    def add_incident(self, title: str, *, actor: str) -> Incident:
        """A new incident (what happened); reports join it by ``triage.incident_id``."""
        title = title.strip()
        if not title or len(title) > 300:
            raise InputError("an incident needs a title of 1-300 characters", field="title")
        at = now()
        with self._write() as conn:
            new_id = conn.execute(
                insert(t.incidents)
                .values(title=title, created_by=actor, created_at=at)
                .returning(t.incidents.c.id)
            ).scalar_one()
            record(conn, actor, "incident-add", None, json.dumps({"incident": new_id}), at)
        return Incident(new_id, title, actor, at, ())

    def get_incident(self, id: int) -> Incident:
        with self._read() as conn:
            row = conn.execute(select(t.incidents).where(t.incidents.c.id == id)).mappings().first()
            if row is None:
                raise NotFound(f"no incident {id}")
            ids = conn.execute(
                select(t.reports.c.id).where(t.reports.c.incident_id == id).order_by(t.reports.c.id)
            ).scalars()
            return Incident(row["id"], row["title"], row["created_by"], row["created_at"], (*ids,))
