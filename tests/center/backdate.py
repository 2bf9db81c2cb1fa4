"""Test harness: move stored reports into an earlier month, as if they had been received
then. Only a closed month in the past is one an analyst may publish, and the center sets
``received`` itself, so tests that publish what they just filed move it first. This writes
the tables directly (no product path may change ``received``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, date, datetime

from sqlalchemy import select

from todokede.center.store import Store, tables


def last_month() -> date:
    """The 15th of the month before this one: a closed month in the past."""
    today = datetime.now(UTC).date()
    first = today.replace(day=1)
    return (first.replace(year=first.year - 1, month=12) if first.month == 1
            else first.replace(month=first.month - 1)).replace(day=15)  # fmt: skip


def move(store: Store, ids: Iterable[int], day: date) -> str:
    """Make the reports received on ``day``; returns its month (``YYYY-MM``)."""
    month = day.strftime("%Y-%m")
    r, t = tables.reports.c, tables.report_terms.c
    with store.engine.begin() as conn:
        for id in ids:
            body = json.loads(conn.execute(select(r.body).where(r.id == id)).scalar_one())
            body["received"] = day.isoformat()
            conn.execute(
                tables.reports.update()
                .where(r.id == id)
                .values(body=json.dumps(body, ensure_ascii=False), received=day, month=month)
            )
            conn.execute(tables.report_terms.update().where(t.report_id == id).values(month=month))
    return month
