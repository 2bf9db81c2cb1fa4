"""実被害 unknown is kept as NULL (it was stored as false), and target services are kept in
``report_terms`` as target codes (they were the reporter's own words).

Both denormalised forms are rebuilt from each report's body and triage. On SQLite the
``reports`` table is copied to drop its NOT NULL, and dropping the old copy empties
``report_terms`` (ON DELETE CASCADE): it is rebuilt whole, which it would be anyway.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from todokede.center.taxonomy import target_codes

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BATCH = 1000


def _effective(body: dict[str, Any], triage: dict[str, Any], key: str) -> Any:
    value = triage.get(key)
    return body.get(key) if value is None else value


def _terms(body: dict[str, Any], triage: dict[str, Any]) -> list[tuple[str, str]]:
    pairs = [("method", c) for c in _effective(body, triage, "methods") or []]
    pairs += [("damage", c) for c in _effective(body, triage, "damage") or []]
    pairs += [("cause", c) for c in _effective(body, triage, "causes") or []]
    reporter_type = (body.get("reporter") or {}).get("type")
    if reporter_type:
        pairs.append(("reporter_type", reporter_type))
    pairs += [("target", c) for c in target_codes(list(body.get("targets") or []))]
    return list(dict.fromkeys(pairs))


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.alter_column("actual_damage", existing_type=sa.Boolean(), nullable=True)
    with op.batch_alter_table("report_terms") as batch:
        batch.alter_column("actual_damage", existing_type=sa.Boolean(), nullable=True)
    _rebuild(unknown=None)


def downgrade() -> None:
    _rebuild(unknown=False)
    with op.batch_alter_table("reports") as batch:
        batch.alter_column("actual_damage", existing_type=sa.Boolean(), nullable=False)
    with op.batch_alter_table("report_terms") as batch:
        batch.alter_column("actual_damage", existing_type=sa.Boolean(), nullable=False)
    _rebuild(unknown=False)


def _rebuild(*, unknown: bool | None) -> None:
    """Every report's ``actual_damage`` and ``report_terms`` again from its JSON."""
    conn = op.get_bind()
    reports = sa.table(
        "reports",
        sa.column("id", sa.Integer()),
        sa.column("body", sa.Text()),
        sa.column("triage", sa.Text()),
        sa.column("month", sa.String()),
        sa.column("counted", sa.Boolean()),
        sa.column("actual_damage", sa.Boolean()),
    )
    terms = sa.table(
        "report_terms",
        sa.column("report_id", sa.Integer()),
        sa.column("vocabulary", sa.String()),
        sa.column("code", sa.String()),
        sa.column("month", sa.String()),
        sa.column("counted", sa.Boolean()),
        sa.column("actual_damage", sa.Boolean()),
    )
    conn.execute(terms.delete())
    last = 0
    while True:
        rows = conn.execute(
            sa.select(reports.c.id, reports.c.body, reports.c.triage, reports.c.month,
                      reports.c.counted)
            .where(reports.c.id > last).order_by(reports.c.id).limit(_BATCH)
        ).all()  # fmt: skip
        if not rows:
            return
        new_terms: list[dict[str, Any]] = []
        for id, body_text, triage_text, month, counted in rows:
            body, triage = json.loads(body_text), json.loads(triage_text)
            actual = _effective(body, triage, "actual_damage")
            actual = unknown if actual is None else actual
            conn.execute(reports.update().where(reports.c.id == id).values(actual_damage=actual))
            new_terms += [
                {"report_id": id, "vocabulary": v, "code": c, "month": month,
                 "counted": counted, "actual_damage": actual}
                for v, c in _terms(body, triage)
            ]  # fmt: skip
        if new_terms:
            conn.execute(terms.insert(), new_terms)
        last = rows[-1][0]
