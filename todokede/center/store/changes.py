"""Changes to a stored report: its triage, a draft's content and sending, additions.

Each is one transaction: the report row, its denormalised columns and ``report_terms``
rows, and the audit entry, together or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, delete, insert, select, update

from todokede.center.intake.schema import Addition, Report, StoredReport, Triage
from todokede.center.store import tables as t
from todokede.center.store.audit import record as _audit
from todokede.center.store.database import Database
from todokede.center.store.database import now as _now
from todokede.center.store.rows import columns as _columns
from todokede.center.store.rows import report_row as _report_row
from todokede.center.store.rows import stored as _stored
from todokede.center.store.rows import term_rows as _term_rows
from todokede.errors import Conflict, InputError, NotDraft, NotFound


class Changes(Database):
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

    def update_report(
        self, id: int, report: Report, *, actor: str, send: bool = False
    ) -> StoredReport:
        """Replace a draft's content (its reporter is still writing it); with ``send``,
        also send it, as ``send_draft`` does, in the same transaction. Audited.
        ``NotDraft`` once the report has been sent (add to it then); NotFound."""
        return self._change_draft(id, report, actor, send=send)

    def send_draft(self, id: int, *, actor: str) -> StoredReport:
        """Send a draft as it is: status ``draft`` -> ``received``, with ``received`` set
        to the day it is sent. Audited. ``NotDraft`` if it was sent already; NotFound."""
        return self._change_draft(id, None, actor, send=True)

    def _change_draft(
        self, id: int, report: Report | None, actor: str, *, send: bool
    ) -> StoredReport:
        now = _now()
        with self._write() as conn:
            old = _stored(_report_row(conn, id, lock=True))
            if old.triage.status != "draft":
                raise NotDraft(
                    f"report {id} has been sent ({old.triage.status}); add to it instead"
                )
            new_report = old.report if report is None else report
            if not new_report.additions:
                new_report = new_report.model_copy(update={"additions": old.report.additions})
            elif new_report.additions != old.report.additions:
                # Additions are only ever appended (POST .../additions), never rewritten.
                raise InputError("additions cannot be changed here", field="additions")
            # The center sets 届出年月日, never the reporter: a draft has not reached the
            # center, so it is the day it is sent; until then it keeps its placeholder.
            received = now.date() if send else old.report.received
            new_report = new_report.model_copy(update={"received": received})
            triage = old.triage.model_copy(update={"status": "received"}) if send else old.triage
            new = old.model_copy(update={"report": new_report, "triage": triage, "updated_at": now})
            self._rewrite(conn, new)
            if report is not None:
                _audit(conn, actor, "update", id, None, now)
            if send:
                _audit(conn, actor, "send", id, None, now)
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
                raise Conflict("a report cannot duplicate itself", field="duplicate_of")
            exists = conn.execute(select(t.reports.c.id).where(t.reports.c.id == dup)).first()
            if exists is None:
                raise Conflict(f"no report {dup}", field="duplicate_of")
        inc = triage.incident_id
        if inc is not None:
            exists = conn.execute(select(t.incidents.c.id).where(t.incidents.c.id == inc)).first()
            if exists is None:
                raise Conflict(f"no incident {inc}", field="incident_id")
