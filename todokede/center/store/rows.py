"""How a stored report maps to rows: the ``reports`` row with its denormalised columns
(kept in step with the body and triage on every write) and one ``report_terms`` row per
effective classification code, so that statistics are plain GROUP BYs."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, RowMapping, select

from todokede.center.intake.schema import Report, StoredReport, Triage
from todokede.center.store import tables as t
from todokede.errors import NotFound, StoreError

REPORT_COLS = (
    t.reports.c.id,
    t.reports.c.body,
    t.reports.c.triage,
    t.reports.c.owner,
    t.reports.c.created_at,
    t.reports.c.updated_at,
)


def terms(sr: StoredReport) -> list[tuple[str, str]]:
    """The effective (vocabulary, code) pairs statistics count."""
    pairs = [("method", c) for c in sr.effective_methods()]
    pairs += [("damage", c) for c in sr.effective_damage()]
    pairs += [("cause", c) for c in sr.effective_causes()]
    if sr.report.reporter.type:
        pairs.append(("reporter_type", sr.report.reporter.type))
    pairs += [("target", c) for c in sr.effective_targets()]
    return list(dict.fromkeys(pairs))


def columns(sr: StoredReport) -> dict[str, Any]:
    """The ``reports`` columns of a stored report (all but id, owner and timestamps)."""
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


def term_rows(sr: StoredReport, cols: dict[str, Any]) -> list[dict[str, Any]]:
    """Its ``report_terms`` rows (``cols`` from ``columns(sr)``)."""
    return [
        {
            "report_id": sr.id,
            "vocabulary": vocab,
            "code": code,
            "month": cols["month"],
            "counted": cols["counted"],
            "actual_damage": cols["actual_damage"],
        }
        for vocab, code in terms(sr)
    ]


def stored(row: RowMapping) -> StoredReport:
    """A report back from a row of ``REPORT_COLS``."""
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


def report_row(conn: Connection, id: int, *, lock: bool = False) -> RowMapping:
    """One report's row (locked for update on PostgreSQL; SQLite's writer holds the
    database lock already). NotFound."""
    query = select(*REPORT_COLS).where(t.reports.c.id == id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFound(f"no report {id}")
    return row
